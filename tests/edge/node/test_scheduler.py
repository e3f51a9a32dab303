from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from edge.capture import DropPolicy, FrameQueue
from edge.node.scheduler import DetectorScheduler, percentile
from models.detector import Detector
from models.types import Detections, Frame, Image


def frame(camera_id: str, ts: float) -> Frame:
    return Frame(np.zeros((4, 4, 3), np.uint8), camera_id, ts)


class SlowDetector:
    class_names = ("thing",)
    input_size_wh = (4, 4)

    def __init__(self, seconds: float = 0.0, fail_on: float | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.fail_on is not None and float(image[0, 0, 0]) == self.fail_on:
                raise RuntimeError("model exploded")
            time.sleep(self.seconds)
            return Detections.empty(self.class_names)
        finally:
            with self._lock:
                self.active -= 1


def test_fake_detector_satisfies_the_protocol() -> None:
    assert isinstance(SlowDetector(), Detector)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_oldest_waiting_first_gives_round_robin_under_a_burst() -> None:
    clock = Clock()
    scheduler = DetectorScheduler(SlowDetector(), lambda f, d: None, clock=clock)
    queues = {name: FrameQueue(1, DropPolicy.LATEST_WINS, clock=clock) for name in "abc"}
    for name, queue in queues.items():
        scheduler.add_camera(name, queue, 1.0)
    clock.now = 1.0
    queues["a"].put(frame("a", 1.0))
    clock.now = 2.0
    queues["b"].put(frame("b", 2.0))
    queues["c"].put(frame("c", 2.0))
    order = []
    for step in range(9):
        claimed = scheduler.next_frame(0.1)
        assert claimed is not None
        schedule, _item = claimed
        order.append(schedule.camera_id)
        clock.now += 1.0
        schedule.in_flight = False
        schedule.last_served_at = clock.now
        # "a" is a fast camera: a burst of new frames after every single claim.
        for burst in range(5):
            queues["a"].put(frame("a", clock.now + burst / 10))
        if step % 3 == 2:  # b and c deliver at their sampling rate
            queues["b"].put(frame("b", clock.now))
            queues["c"].put(frame("c", clock.now))
    assert order == ["a", "b", "c"] * 3
    assert scheduler.next_frame(0.05) is not None  # a's latest


def test_a_camera_being_analysed_is_not_claimed_twice() -> None:
    scheduler = DetectorScheduler(SlowDetector(), lambda f, d: None)
    queue = FrameQueue(2, DropPolicy.WAIT)
    scheduler.add_camera("a", queue, 1.0)
    queue.put(frame("a", 0.0))
    queue.put(frame("a", 1.0))
    assert scheduler.next_frame(0.05) is not None
    assert scheduler.next_frame(0.05) is None  # second frame waits for the first to finish


@pytest.fixture
def running() -> Iterator[list[DetectorScheduler]]:
    schedulers: list[DetectorScheduler] = []
    yield schedulers
    for scheduler in schedulers:
        scheduler.stop()
        assert scheduler.join(5)


def test_flooding_camera_cannot_starve_the_others(running: list[DetectorScheduler]) -> None:
    results: list[str] = []
    done = threading.Event()

    def on_result(f: Frame, d: Detections) -> None:
        results.append(f.camera_id)
        if len(results) >= 40:
            done.set()

    scheduler = DetectorScheduler(SlowDetector(0.005), on_result)
    running.append(scheduler)
    queues = {name: FrameQueue(1, DropPolicy.LATEST_WINS) for name in ("flood", "s1", "s2", "s3")}
    for name, queue in queues.items():
        scheduler.add_camera(name, queue, 0.01)
    scheduler.start()
    stop = threading.Event()

    def produce(name: str, period_s: float) -> None:
        ts = 0.0
        while not stop.is_set():
            queues[name].put(frame(name, ts))
            ts += period_s
            time.sleep(period_s)

    producers = [threading.Thread(target=produce, args=("flood", 0.0002))]
    producers += [threading.Thread(target=produce, args=(name, 0.002)) for name in ("s1", "s2", "s3")]
    for thread in producers:
        thread.start()
    try:
        assert done.wait(10)
    finally:
        stop.set()
        for thread in producers:
            thread.join(2)
    counts = {name: results[:40].count(name) for name in queues}
    assert min(counts.values()) >= 8, counts  # fair share is 10 each
    assert queues["flood"].dropped_count > 0


def test_records_lag_and_sampling_jitter_and_survives_detector_errors(
    running: list[DetectorScheduler],
) -> None:
    got: list[float] = []
    all_done = threading.Event()

    def on_result(f: Frame, d: Detections) -> None:
        got.append(f.ts)
        if len(got) == 4:
            all_done.set()

    scheduler = DetectorScheduler(SlowDetector(0.001, fail_on=9.0), on_result, workers=2)
    running.append(scheduler)
    queue = FrameQueue(8, DropPolicy.WAIT)
    schedule = scheduler.add_camera("cam", queue, 2.0)
    scheduler.start()
    for ts in (0.0, 2.0, 4.5, 6.0, 8.0):
        pixels = np.full((4, 4, 3), 9 if ts == 4.5 else 0, np.uint8)
        queue.put(Frame(pixels, "cam", ts))
    assert all_done.wait(5)
    assert got == [0.0, 2.0, 6.0, 8.0]  # in order per camera even with two workers
    _wait(lambda: schedule.analysed == 4)
    assert schedule.errors == 1
    assert list(schedule.interval_s) == [2.0, 4.0, 2.0]  # the failed frame is a gap
    assert schedule.jitter_s() == [0.0, 2.0, 0.0]
    summary = schedule.summary()
    assert summary["analysed"] == 4 and summary["jitter_p50_s"] == 0.0
    assert all(lag >= 0 for lag in schedule.lag_s)
    assert scheduler.busy_s > 0


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_duplicate_camera_is_refused() -> None:
    scheduler = DetectorScheduler(SlowDetector(), lambda f, d: None)
    scheduler.add_camera("a", FrameQueue(), 1.0)
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.add_camera("a", FrameQueue(), 1.0)


def _wait(condition: object, timeout_s: float = 5.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
