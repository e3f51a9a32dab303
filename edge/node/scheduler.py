"""Share one detector fairly between many cameras.

Each camera has its own bounded `FrameQueue`. A detector worker takes the
camera whose frame has been waiting longest (``waiting_since``, which a
LATEST_WINS replacement does not reset), skipping cameras that another worker
is already serving so each camera's frames are analysed in order. With every
camera ready this is round-robin; a fast stream or a burst on one camera only
ever holds one slot in the rotation.

The CPU budget is the number of detector workers here times the ONNX Runtime
threads each detector was built with; decoding uses what is left.

Per camera the scheduler records, for metrics:
  * lag: clock() at the end of detection minus clock() when the frame was queued;
  * sampling interval and jitter: the gap between the picture times of two
    consecutive analysed frames, and its distance from the nominal sampling
    interval (dropped frames and a saturated detector both show up here).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.capture.queue import FrameQueue, QueuedFrame
from models.detector import Detector
from models.types import Detections, Frame

log = logging.getLogger(__name__)

ResultCallback = Callable[[Frame, Detections], None]
WINDOW = 512  # samples kept per camera for percentiles


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of `values`, None when empty."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


@dataclass
class CameraSchedule:
    """What the scheduler knows and measures about one camera (plain attributes for metrics)."""

    camera_id: str
    queue: FrameQueue
    sample_interval_s: float
    analysed: int = 0
    errors: int = 0
    in_flight: bool = False
    last_served_at: float = float("-inf")
    last_ts: float | None = None
    last_lag_s: float | None = None
    lag_s: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    interval_s: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    @property
    def dropped(self) -> int:
        return self.queue.dropped_count

    def jitter_s(self) -> list[float]:
        return [abs(gap - self.sample_interval_s) for gap in self.interval_s]

    def summary(self) -> dict[str, float | int | None]:
        jitter = self.jitter_s()
        lags = list(self.lag_s)
        return {
            "analysed": self.analysed,
            "dropped": self.dropped,
            "errors": self.errors,
            "jitter_p50_s": percentile(jitter, 50),
            "jitter_p95_s": percentile(jitter, 95),
            "lag_p50_s": percentile(lags, 50),
            "lag_p95_s": percentile(lags, 95),
        }


class DetectorScheduler:
    """Runs `detector` on frames from many cameras in `workers` threads.

    `on_result(frame, detections)` is called in the worker thread that ran the
    detector, in frame order per camera. With `workers > 1` the detector must be
    safe to call concurrently (one ONNX Runtime session is) or each worker
    gets its own from `detector_factory`.
    """

    def __init__(
        self,
        detector: Detector | Callable[[], Detector],
        on_result: ResultCallback,
        *,
        workers: int = 1,
        conf_threshold: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop_event: threading.Event | None = None,
        idle_poll_s: float = 0.5,
    ) -> None:
        if workers < 1:
            raise ValueError(f"DetectorScheduler.workers: expected >= 1, got {workers}")
        self._detector_source = detector
        self._on_result = on_result
        self._conf_threshold = conf_threshold
        self._clock = clock
        self._stop = stop_event or threading.Event()
        self._idle_poll_s = idle_poll_s
        self._ready = threading.Condition()
        self._cameras: dict[str, CameraSchedule] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"detector-{i}", daemon=True) for i in range(workers)
        ]
        self.busy_s = 0.0  # total detector time, all workers
        self.started_at: float | None = None

    def add_camera(self, camera_id: str, queue: FrameQueue, sample_interval_s: float) -> CameraSchedule:
        """Serve `queue`; the queue's `on_ready` is pointed at this scheduler."""
        schedule = CameraSchedule(camera_id, queue, sample_interval_s)
        with self._ready:
            if camera_id in self._cameras:
                raise ValueError(f"camera {camera_id!r} is already scheduled")
            self._cameras[camera_id] = schedule
        queue.set_on_ready(self._wake)
        self._wake()
        return schedule

    @property
    def workers(self) -> int:
        """Detector worker threads (each runs `on_result`, so the pipelines, for its frames)."""
        return len(self._threads)

    def cameras(self) -> dict[str, CameraSchedule]:
        with self._ready:
            return dict(self._cameras)

    def start(self) -> None:
        self.started_at = self._clock()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()

    def join(self, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def utilisation(self) -> float:
        """Share of wall time the detector workers were busy (1.0 = one worker saturated)."""
        if self.started_at is None:
            return 0.0
        elapsed = self._clock() - self.started_at
        return self.busy_s / elapsed if elapsed > 0 else 0.0

    def _wake(self) -> None:
        with self._ready:
            self._ready.notify_all()

    def next_frame(self, timeout_s: float) -> tuple[CameraSchedule, QueuedFrame] | None:
        """Claim the longest-waiting ready frame (marks its camera in flight); None on timeout/stop."""
        deadline = time.monotonic() + timeout_s
        with self._ready:
            while not self._stop.is_set():
                chosen = self._choose_locked()
                if chosen is not None:
                    item = chosen.queue.get_nowait()
                    if item is not None:
                        chosen.in_flight = True
                        return chosen, item
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._ready.wait(remaining)
        return None

    def _choose_locked(self) -> CameraSchedule | None:
        best: tuple[float, float] | None = None
        chosen = None
        for schedule in self._cameras.values():
            if schedule.in_flight:
                continue
            since = schedule.queue.waiting_since
            if since is None:
                continue
            key = (since, schedule.last_served_at)
            if best is None or key < best:
                best, chosen = key, schedule
        return chosen

    def _work(self) -> None:
        source = self._detector_source
        detector: Detector = source if isinstance(source, Detector) else source()
        while not self._stop.is_set():
            claimed = self.next_frame(self._idle_poll_s)
            if claimed is None:
                continue
            schedule, item = claimed
            busy_s = 0.0
            try:
                busy_s = self._analyse(detector, schedule, item)
            finally:
                with self._ready:
                    self.busy_s += busy_s
                    schedule.in_flight = False
                    schedule.last_served_at = self._clock()
                    self._ready.notify_all()

    def _analyse(self, detector: Detector, schedule: CameraSchedule, item: QueuedFrame) -> float:
        """Detect, record, hand over; the seconds the detector took."""
        frame = item.frame
        started = self._clock()
        try:
            detections = detector.detect(frame.pixels, self._conf_threshold)
        except Exception:
            schedule.errors += 1
            log.exception("camera %s: detector failed on frame ts=%.3f", schedule.camera_id, frame.ts)
            return self._clock() - started
        finished = self._clock()
        schedule.analysed += 1
        schedule.last_lag_s = finished - item.enqueued_at
        schedule.lag_s.append(schedule.last_lag_s)
        if schedule.last_ts is not None and frame.ts > schedule.last_ts:
            schedule.interval_s.append(frame.ts - schedule.last_ts)
        schedule.last_ts = frame.ts
        try:
            self._on_result(frame, detections)
        except Exception:
            log.exception("camera %s: result handler failed", schedule.camera_id)
        return finished - started
