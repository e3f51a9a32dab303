from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge.capture import (
    BackoffPolicy,
    CameraSpec,
    CameraState,
    CameraWorker,
    DecodeMode,
    DropPolicy,
    FrameQueue,
)
from edge.capture.sources import FrameSource, Picture
from tests.edge.capture.fakes import ScriptedSource, StateLog

S = CameraState
FAST_BACKOFF = BackoffPolicy(initial_s=0.02, factor=2, max_s=0.1, jitter_fraction=0.5)


def live_spec(**overrides: object) -> CameraSpec:
    values: dict[str, object] = {
        "camera_id": "cam-live",
        "url": "rtsp://127.0.0.1:1/cam",
        "sample_interval_s": 0.05,
        "stall_timeout_s": 0.3,
        "backoff": FAST_BACKOFF,
    }
    values.update(overrides)
    return CameraSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def workers() -> Iterator[list[CameraWorker]]:
    started: list[CameraWorker] = []
    yield started
    for worker in started:
        worker.stop()
    for worker in started:
        assert worker.join(5), f"{worker.camera_id} did not stop"


def test_file_camera_samples_in_stream_time_and_stops_at_the_end(vtest_avi: Path) -> None:
    spec = CameraSpec("cam-file", str(vtest_avi), sample_interval_s=2.0, decode=DecodeMode.AUTO)
    assert spec.drop_policy is DropPolicy.WAIT
    queue = spec.make_queue()
    states = StateLog()
    worker = CameraWorker(spec, queue, on_state=states)
    worker.start()
    frames = []
    while (item := queue.get(timeout_s=10)) is not None:
        frames.append(item.frame)
    assert worker.join(5)
    assert [f.ts for f in frames] == pytest.approx([2.0 * i for i in range(40)])  # 0 .. 78 s, none dropped
    assert {f.camera_id for f in frames} == {"cam-file"}
    assert frames[3].pixels.shape == (576, 768, 3)
    assert not np.array_equal(frames[0].pixels, frames[1].pixels)
    assert states.states == [S.STARTING, S.STREAMING, S.STOPPED]
    stats = worker.stats()
    assert (stats.pictures, stats.sampled, stats.failures) == (795, 40, 0)


def test_every_decoded_picture_reaches_the_picture_callback_scaled_by_the_decoder(vtest_avi: Path) -> None:
    """The scene model's tap: all pictures, sampled or not, converted at its width by PyAV."""
    spec = CameraSpec("cam-file", str(vtest_avi), sample_interval_s=2.0, decode=DecodeMode.FULL)
    queue = spec.make_queue()
    seen: list[tuple[float, tuple[int, ...]]] = []
    calls = 0

    def on_picture(picture: Picture) -> None:
        nonlocal calls
        calls += 1
        if calls % 100 == 1:
            seen.append((picture.ts, picture.to_bgr_width(384).shape))
        if calls == 50:
            raise RuntimeError("a broken callback must not stop the capture")

    worker = CameraWorker(spec, queue, on_picture=on_picture)
    worker.start()
    sampled = 0
    while queue.get(timeout_s=10) is not None:
        sampled += 1
    assert worker.join(5)
    assert calls == 795 and sampled == 40  # every picture, while the sampler still took its 40
    assert all(shape == (288, 384, 3) for _, shape in seen)


def test_a_picture_without_a_scaled_converter_is_scaled_after_converting() -> None:
    image = np.zeros((576, 768, 3), np.uint8)
    picture = Picture(0.0, True, lambda: image)
    assert picture.to_bgr_width(384).shape == (288, 384, 3)
    assert picture.to_bgr_width(1000) is image  # never scaled up


def test_unreachable_camera_backs_off_forever_then_reports_offline(workers: list[CameraWorker]) -> None:
    opens: list[float] = []

    def factory() -> FrameSource:
        opens.append(time.monotonic())
        return ScriptedSource(fail_open=True)

    states = StateLog()
    spec = live_spec(offline_after_s=0.2)
    worker = CameraWorker(spec, spec.make_queue(), source_factory=factory, on_state=states, rng=lambda: 0.0)
    workers.append(worker)
    worker.start()
    states.wait_for(S.STARTING, S.RECONNECTING, S.OFFLINE, timeout_s=5)
    deadline = time.monotonic() + 5
    while len(opens) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(opens) >= 8  # still retrying after going offline
    gaps = np.diff(opens[:6])
    assert gaps[0] >= 0.015 and gaps[1] >= 0.035  # 0.02, 0.04, 0.08, 0.1 (capped) ...
    assert gaps.max() < 0.5
    assert worker.stats().failures >= 8
    worker.stop()
    assert worker.join(2)
    assert worker.state is S.STOPPED


def test_watchdog_reconnects_a_stalled_source(workers: list[CameraWorker]) -> None:
    sources: list[ScriptedSource] = []

    def factory() -> FrameSource:
        sources.append(ScriptedSource(pictures=5 if not sources else 10**9))
        return sources[-1]

    states = StateLog()
    spec = live_spec()
    queue = spec.make_queue()
    worker = CameraWorker(spec, queue, source_factory=factory, on_state=states)
    workers.append(worker)
    worker.start()
    states.wait_for(S.STARTING, S.STREAMING, S.RECONNECTING, S.STREAMING, timeout_s=5)
    assert worker.stats().stalls == 1
    assert sources[0].closed
    assert len(sources) == 2
    assert queue.get(timeout_s=2) is not None


def test_broken_stream_reconnects_and_a_failing_callback_does_not_kill_the_worker(
    workers: list[CameraWorker],
) -> None:
    count = [0]

    def factory() -> FrameSource:
        count[0] += 1
        return ScriptedSource(pictures=3, after="fail")

    seen = StateLog()

    def on_state(camera_id: str, state: CameraState) -> None:
        seen(camera_id, state)
        raise RuntimeError("broker gone")

    spec = live_spec()
    worker = CameraWorker(spec, spec.make_queue(), source_factory=factory, on_state=on_state)
    workers.append(worker)
    worker.start()
    seen.wait_for(S.STREAMING, S.RECONNECTING, S.STREAMING, S.RECONNECTING, S.STREAMING)
    assert worker.stats().failures >= 2


def test_live_camera_never_blocks_on_a_slow_consumer(workers: list[CameraWorker]) -> None:
    spec = live_spec(sample_interval_s=0.001)
    queue = spec.make_queue()
    assert (queue.policy, queue.capacity) == (DropPolicy.LATEST_WINS, 1)
    worker = CameraWorker(spec, queue, source_factory=lambda: ScriptedSource(period_s=0.002))
    workers.append(worker)
    worker.start()
    deadline = time.monotonic() + 5
    while worker.stats().sampled < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stats().sampled >= 50  # nobody consumed: frames replaced, not blocked
    assert queue.dropped_count >= 49
    assert len(queue) == 1


def test_stop_interrupts_a_file_worker_waiting_on_a_full_queue(vtest_avi: Path) -> None:
    spec = CameraSpec("cam-file", str(vtest_avi), sample_interval_s=0.1)
    queue = FrameQueue(1, DropPolicy.WAIT)
    stop = threading.Event()
    worker = CameraWorker(spec, queue, stop_event=stop)
    worker.start()
    deadline = time.monotonic() + 5
    while len(queue) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    assert worker.join(3)
    assert worker.state is S.STOPPED
    assert queue.closed


@pytest.mark.parametrize(
    ("field", "value"),
    [("sample_interval_s", 0.0), ("stall_timeout_s", -1.0)],
)
def test_spec_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        CameraSpec("c", "x.mp4", **{field: value})  # type: ignore[arg-type]


def test_drop_policy_follows_the_source() -> None:
    assert CameraSpec("c", "rtsp://h/s").drop_policy is DropPolicy.LATEST_WINS
    assert CameraSpec("c", "/dev/video0").drop_policy is DropPolicy.LATEST_WINS
    assert CameraSpec("c", "a.mp4").drop_policy is DropPolicy.WAIT
    assert CameraSpec("c", "a.mp4", realtime=True).drop_policy is DropPolicy.LATEST_WINS
