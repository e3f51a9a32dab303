"""A real RTSP camera on loopback: outage and stall, with a file camera running beside it."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import pytest

from edge.capture import BackoffPolicy, CameraSpec, CameraState, CameraWorker, DecodeMode
from edge.node.scheduler import DetectorScheduler
from models.types import Detections, Frame
from tests.edge.capture.fakes import StateLog
from tests.support.rtsp import RtspServer

S = CameraState
BACKOFF = BackoffPolicy(initial_s=0.2, factor=2, max_s=1.0, jitter_fraction=0.3)


class CountingDetector:
    """A Detector that finds nothing and remembers what it saw."""

    class_names = ("thing",)
    input_size_wh = (64, 64)

    def __init__(self) -> None:
        self.frames: list[tuple[str, float, float]] = []  # camera, ts, clock

    def detect(self, image: object, conf_threshold: float | None = None) -> Detections:
        return Detections.empty(self.class_names)


def test_rtsp_outage_reconnects_while_a_file_camera_keeps_producing(
    rtsp_server: RtspServer, vtest_avi: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    live = CameraSpec(
        "cam-rtsp",
        rtsp_server.url("admin:S3cretPw"),
        sample_interval_s=0.5,
        stall_timeout_s=2.0,
        open_timeout_s=2.0,
        backoff=BACKOFF,
    )
    replay = CameraSpec("cam-file", str(vtest_avi), sample_interval_s=0.5, realtime=True, loop=True)
    results: dict[str, list[tuple[float, float]]] = {"cam-rtsp": [], "cam-file": []}

    def on_result(frame: Frame, detections: Detections) -> None:
        results[frame.camera_id].append((frame.ts, time.monotonic()))

    scheduler = DetectorScheduler(CountingDetector(), on_result)
    states = StateLog()
    workers = []
    for spec in (live, replay):
        queue = spec.make_queue()
        scheduler.add_camera(spec.camera_id, queue, spec.sample_interval_s)
        workers.append(CameraWorker(spec, queue, on_state=states if spec is live else None))
    scheduler.start()
    for worker in workers:
        worker.start()
    try:
        states.wait_for(S.STARTING, S.STREAMING, timeout_s=10)
        _wait_until(lambda: len(results["cam-rtsp"]) >= 3, 10)
        first = results["cam-rtsp"][0][0]
        sampled = [ts for ts, _ in results["cam-rtsp"]]
        assert min(b - a for a, b in itertools.pairwise(sampled)) >= 0.4
        assert abs(first - time.monotonic()) < 10  # live: monotonic capture time

        outage_started = time.monotonic()
        rtsp_server.stop()
        after_stop = states.wait_for(S.RECONNECTING, timeout_s=10)
        file_before = len(results["cam-file"])
        time.sleep(1.5)  # down for a while: several refused reconnects
        rtsp_server.start()
        states.wait_for(S.STREAMING, timeout_s=10, start=after_stop)
        recovered_at = time.monotonic()
        frames_before = len(results["cam-rtsp"])
        _wait_until(lambda: len(results["cam-rtsp"]) >= frames_before + 2, 10)

        # The file camera ran on through the outage, at its own pace.
        during = [ts for ts, at in results["cam-file"] if outage_started <= at <= recovered_at]
        assert len(during) >= 2, results["cam-file"]
        assert len(results["cam-file"]) > file_before
        assert workers[0].stats().connects >= 2
        assert workers[0].stats().failures >= 2  # the broken stream and >= 1 refused reconnect
        assert rtsp_server.connections >= 2
    finally:
        for worker in workers:
            worker.stop()
        scheduler.stop()
        for worker in workers:
            assert worker.join(10)
        assert scheduler.join(5)
    assert "S3cretPw" not in caplog.text
    assert "rtsp://***@127.0.0.1" in caplog.text


def test_rtsp_stall_is_caught_by_the_watchdog(rtsp_server: RtspServer) -> None:
    spec = CameraSpec(
        "cam-stall",
        rtsp_server.url(),
        sample_interval_s=1.0,
        decode=DecodeMode.KEYFRAMES,
        stall_timeout_s=1.0,
        open_timeout_s=2.0,
        backoff=BACKOFF,
    )
    queue = spec.make_queue()
    states = StateLog()
    worker = CameraWorker(spec, queue, on_state=states)
    worker.start()
    try:
        streaming = states.wait_for(S.STARTING, S.STREAMING, timeout_s=10)
        first = queue.get(timeout_s=5)
        assert first is not None and first.frame.pixels.shape == (576, 768, 3)
        rtsp_server.stall()  # connection stays open, packets stop
        states.wait_for(S.RECONNECTING, S.STREAMING, timeout_s=10, start=streaming)
        assert worker.stats().stalls + worker.stats().failures >= 1
        assert queue.get(timeout_s=5) is not None
    finally:
        worker.stop()
        assert worker.join(10)


def _wait_until(condition: object, timeout_s: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
