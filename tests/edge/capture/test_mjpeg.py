from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import pytest

from edge.capture import CameraSpec, CameraState, CameraWorker, SourceKind
from tests.edge.capture.fakes import StateLog
from tests.edge.capture.mjpeg_server import MjpegServer


@pytest.fixture(scope="module")
def jpegs(vtest_avi: Path) -> list[bytes]:
    capture = cv2.VideoCapture(str(vtest_avi))
    encoded = []
    for _ in range(20):
        ok, image = capture.read()
        assert ok
        encoded.append(cv2.imencode(".jpg", image)[1].tobytes())
    capture.release()
    return encoded


def test_http_mjpeg_camera_streams_with_capture_timestamps(jpegs: list[bytes]) -> None:
    with MjpegServer(jpegs, fps=20) as server:
        spec = CameraSpec(
            "cam-http", server.url(), sample_interval_s=0.2, open_timeout_s=5, stall_timeout_s=5
        )
        assert spec.kind is SourceKind.HTTP
        queue = spec.make_queue()
        states = StateLog()
        worker = CameraWorker(spec, queue, on_state=states)
        worker.start()
        try:
            states.wait_for(CameraState.STARTING, CameraState.STREAMING, timeout_s=10)
            frames = [queue.get(timeout_s=5) for _ in range(3)]
        finally:
            worker.stop()
            assert worker.join(10)
    got = [f.frame for f in frames if f is not None]
    assert len(got) == 3
    assert got[0].pixels.shape == (576, 768, 3)
    # Live time under a loaded CI box: frames can arrive in bursts, so only a loose bound.
    assert min(b.ts - a.ts for a, b in itertools.pairwise(got)) >= 0.1
