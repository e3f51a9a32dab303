"""What the node tells the review server about itself, besides incidents.

- Camera status: retained `{prefix}/{node}/{camera}/status` on every capture state change.
- Snapshots: retained `{prefix}/{node}/{camera}/snapshot`, a downscaled JPEG with people
  blurred, soon after a camera's first frame and then every `snapshot_interval_s`, so the
  admin's zone editor has a current picture to draw on.
- Health: the publisher sends `{prefix}/{node}/health` every interval; `health_probe` adds
  each camera's state, last frame, analysed fps, open incidents and capture CPU share, the
  config sync's applied version and latest rejection (with its first `source:line: key:
  message` problems), and what the box runs: its threads and the detector's recent time per frame.
- Metrics that are polled rather than counted (outbox backlog, queue depth, capture threads
  and their CPU seconds by stage).

The capture layer knows five states; the wire contract (uplink.messages.CameraState) three:
starting counts as reconnecting (not yet delivering), stopped as offline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import cv2
import numpy as np

from edge.capture import CameraState as CaptureState
from edge.evidence.render import EvidencePolicy, blur_people, encode_bounded_jpeg
from edge.node.config_sync import ConfigSync, SyncStatus
from edge.node.metrics import NodeMetrics
from models.types import Detections, Frame, Image
from uplink.clock import Clock, utc_now
from uplink.messages import (
    MAX_PROBLEM_CHARS,
    CameraHealth,
    CameraState,
    CameraStatus,
    ConfigHealth,
    RuntimeHealth,
    SceneView,
)
from uplink.publisher import HealthProbe

log = logging.getLogger(__name__)

WIRE_STATE = {
    CaptureState.STARTING: CameraState.RECONNECTING,
    CaptureState.STREAMING: CameraState.STREAMING,
    CaptureState.RECONNECTING: CameraState.RECONNECTING,
    CaptureState.OFFLINE: CameraState.OFFLINE,
    CaptureState.STOPPED: CameraState.OFFLINE,
}
SNAPSHOT_MAX_BYTES = 150_000


class StatusSink(Protocol):
    """Where retained state goes (uplink.publisher.Publisher)."""

    def publish_camera_status(self, status: CameraStatus) -> None: ...

    def publish_snapshot(self, camera_id: str, jpeg: bytes) -> None: ...


@dataclass(frozen=True)
class LatestView:
    """A camera's most recent analysed frame and its detections (immutable, shared by reference)."""

    frame: Frame
    detections: Detections
    at_monotonic: float


class CameraStatusReporter:
    """The capture workers' `on_state` callback: publish retained status, set the metric.

    `view` is the scene models' callback: a change of view (`view_changed`, `obstructed`: the
    tamper alarms) is published with the camera's current capture state, and vice versa.
    """

    def __init__(
        self,
        node_id: str,
        sink: StatusSink,
        metrics: NodeMetrics,
        last_frame_monotonic: Callable[[str], float | None],
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self._sink = sink
        self._metrics = metrics
        self._last_frame = last_frame_monotonic
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._states: dict[str, CaptureState] = {}
        self._views: dict[str, SceneView] = {}

    def __call__(self, camera_id: str, state: CaptureState) -> None:
        self._metrics.set_camera_state(camera_id, state.value)
        with self._lock:
            self._states[camera_id] = state
            view = self._views.get(camera_id)
        self._publish(camera_id, state, view)

    def view(self, camera_id: str, view: SceneView) -> None:
        """A scene model's view of `camera_id` changed; published only when it differs."""
        self._metrics.scene_view.labels(camera=camera_id).state(view.value)
        with self._lock:
            if self._views.get(camera_id) is view:
                return
            self._views[camera_id] = view
            state = self._states.get(camera_id, CaptureState.STREAMING)
        if view in (SceneView.VIEW_CHANGED, SceneView.OBSTRUCTED):
            log.warning("camera %s: %s", camera_id, view.value)
        self._publish(camera_id, state, view)

    def _publish(self, camera_id: str, state: CaptureState, view: SceneView | None) -> None:
        now = self._clock()
        last = self._last_frame(camera_id)
        last_frame_at = None if last is None else now - timedelta(seconds=max(0.0, self._monotonic() - last))
        status = CameraStatus(
            node_id=self.node_id,
            camera_id=camera_id,
            state=WIRE_STATE[state],
            at=now,
            last_frame_at=last_frame_at,
            view=view,
        )
        self._sink.publish_camera_status(status)


def snapshot_jpeg(view: LatestView, max_side_px: int, max_bytes: int = SNAPSHOT_MAX_BYTES) -> bytes:
    """The frame with people blurred, no longer than max_side_px, under max_bytes."""
    blurred: Image = blur_people(view.frame.pixels, view.detections)
    h, w = blurred.shape[:2]
    scale = min(1.0, max_side_px / max(w, h))
    if scale < 1.0:
        size = (round(w * scale), round(h * scale))
        blurred = np.ascontiguousarray(
            cv2.resize(blurred, size, interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
    return encode_bounded_jpeg(blurred, EvidencePolicy(max_long_side_px=max_side_px, max_bytes=max_bytes))


@dataclass(frozen=True)
class CameraCounts:
    """Totals polled from a camera's capture worker and queue."""

    captured: int
    dropped: int
    queue_depth: int
    capturing: bool = True  # its capture thread runs (a file camera's ends with the file)
    # CPU seconds of its capture thread (edge.capture.CaptureStats), by stage:
    demux_s: float = 0.0
    decode_s: float = 0.0
    convert_s: float = 0.0


class StatusLoop:
    """One housekeeping thread: snapshots on schedule, polled gauges, ticking once a second."""

    def __init__(
        self,
        sink: StatusSink,
        metrics: NodeMetrics,
        latest: Callable[[], Mapping[str, LatestView]],
        backlog: Callable[[], int],
        camera_counts: Callable[[], Mapping[str, CameraCounts]],
        *,
        snapshot_interval_s: float,
        snapshot_max_side_px: int,
        stop_event: threading.Event,
        tick_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._latest = latest
        self._backlog = backlog
        self._camera_counts = camera_counts
        self._seen: dict[str, CameraCounts] = {}
        self._snapshot_interval_s = snapshot_interval_s
        self._snapshot_max_side_px = snapshot_max_side_px
        self._stop = stop_event
        self._tick_s = tick_s
        self._monotonic = monotonic
        self._next_snapshot: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="edge-status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def tick(self) -> None:
        """One round; public so a test can drive it without the thread."""
        self._metrics.outbox_backlog.set(self._backlog())
        self._count_frames()
        if self._snapshot_interval_s <= 0:
            return
        now = self._monotonic()
        for camera_id, view in self._latest().items():
            due = self._next_snapshot.get(camera_id, 0.0)  # the first frame: a snapshot at once
            if now < due:
                continue
            self._next_snapshot[camera_id] = now + self._snapshot_interval_s
            try:
                self._sink.publish_snapshot(camera_id, snapshot_jpeg(view, self._snapshot_max_side_px))
            except Exception:
                log.exception("camera %s: snapshot failed", camera_id)

    def _count_frames(self) -> None:
        """Workers keep totals; Prometheus counters only go up, so add what is new since last time."""
        metrics = self._metrics
        all_counts = self._camera_counts()
        for camera_id, counts in all_counts.items():
            seen = self._seen.get(camera_id, CameraCounts(0, 0, 0))
            metrics.frames_captured.labels(camera=camera_id).inc(max(0, counts.captured - seen.captured))
            metrics.frames_dropped.labels(camera=camera_id).inc(max(0, counts.dropped - seen.dropped))
            metrics.queue_depth.labels(camera=camera_id).set(counts.queue_depth)
            for stage, now_s, seen_s in (
                ("demux", counts.demux_s, seen.demux_s),
                ("decode", counts.decode_s, seen.decode_s),
                ("convert", counts.convert_s, seen.convert_s),
            ):
                metrics.capture_cpu.labels(camera=camera_id, stage=stage).inc(max(0.0, now_s - seen_s))
            self._seen[camera_id] = counts
        metrics.capture_threads.set(sum(counts.capturing for counts in all_counts.values()))

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            try:
                self.tick()
            except Exception:
                log.exception("status loop round failed")


class RateMeter:
    """Events per second over the last `window_s`: the pipeline marks, the health probe reads."""

    def __init__(self, window_s: float = 30.0, max_events: int = 4096) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=max_events)
        self._lock = threading.Lock()
        self._first: float | None = None

    def mark(self, now: float) -> None:
        with self._lock:
            if self._first is None:
                self._first = now
            self._times.append(now)

    def per_second(self, now: float) -> float:
        with self._lock:
            if self._first is None:
                return 0.0
            since = now - self.window_s
            while self._times and self._times[0] < since:
                self._times.popleft()
            # A camera that started less than a window ago is measured over the time it has run.
            span_s = min(self.window_s, now - self._first)
            return len(self._times) / span_s if span_s > 0 else 0.0


class RecentDurations:
    """The last `size` durations (seconds): the detector thread adds, the health probe reads."""

    def __init__(self, size: int = 256) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._seconds: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._seconds.append(seconds)

    def mean_p95_ms(self) -> tuple[float, float] | None:
        """Mean and 95th percentile in milliseconds; None before the first."""
        with self._lock:
            seconds = list(self._seconds)
        if not seconds:
            return None
        ms = np.asarray(seconds, np.float64) * 1000.0
        return float(ms.mean()), float(np.percentile(ms, 95))


class CoreShare:
    """CPU seconds per wall second from one reading to the next (1.0: a whole core); one reader."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def update(self, now: float, cpu_s: float) -> float | None:
        """The share since the previous reading; None at the first (or if the clock did not move)."""
        last, self._last = self._last, (now, cpu_s)
        if last is None or now <= last[0]:
            return None
        return max(0.0, cpu_s - last[1]) / (now - last[0])


@dataclass(frozen=True)
class RuntimeReading:
    """What the box runs now: its threads and the detector's recent time per frame."""

    detector_threads: int  # inference threads of the detector (node.yaml detector.threads)
    detector_workers: int  # threads taking frames to the detector (each runs the pipelines)
    capture_threads: int  # running, one per camera
    detect_ms: tuple[float, float] | None  # mean and p95 of the recent frames; None before one


def runtime_health(reading: RuntimeReading) -> RuntimeHealth:
    mean_p95 = reading.detect_ms
    return RuntimeHealth(
        detector_threads=reading.detector_threads,
        detector_workers=reading.detector_workers,
        capture_threads=reading.capture_threads,
        detect_ms_mean=None if mean_p95 is None else round(mean_p95[0], 3),
        detect_ms_p95=None if mean_p95 is None else round(mean_p95[1], 3),
    )


@dataclass(frozen=True)
class CameraReading:
    """One camera now: its capture worker's state and last picture, its pipeline's counts."""

    state: CaptureState
    last_frame_monotonic: float | None
    fps_analysed: float
    incidents_open: int
    scene: SceneHealth | None = None
    decode_share: float | None = None  # a core's share its capture thread took since the last reading


@dataclass(frozen=True)
class SceneHealth:
    """A camera's scene model now, for health."""

    view: SceneView
    static_regions: int
    relearns: int
    scene_ms: float


def camera_health(
    camera_id: str, reading: CameraReading, clock: Clock, monotonic: Callable[[], float]
) -> CameraHealth:
    last = reading.last_frame_monotonic
    return CameraHealth(
        camera_id=camera_id,
        state=WIRE_STATE[reading.state],
        last_frame_at=None if last is None else utc_of_monotonic(min(last, monotonic()), clock, monotonic),
        fps_analysed=round(max(0.0, reading.fps_analysed), 3),
        incidents_open=max(0, reading.incidents_open),
        view=None if reading.scene is None else reading.scene.view,
        static_regions=None if reading.scene is None else reading.scene.static_regions,
        relearns=None if reading.scene is None else reading.scene.relearns,
        scene_ms=None if reading.scene is None else round(reading.scene.scene_ms, 3),
        decode_share=None if reading.decode_share is None else round(reading.decode_share, 4),
    )


def config_health(status: SyncStatus) -> ConfigHealth:
    rejected = status.rejected
    if rejected is None:
        return ConfigHealth(applied_version=status.applied_version)
    return ConfigHealth(
        applied_version=status.applied_version,
        rejected_version=rejected.version,
        rejected_at=rejected.at,
        problems=[_clip(problem) for problem in rejected.problems] or ["(no details)"],
    )


def _clip(problem: str) -> str:
    return problem if len(problem) <= MAX_PROBLEM_CHARS else problem[: MAX_PROBLEM_CHARS - 1] + "…"


def health_probe(
    config_sync: ConfigSync,
    software_version: str | None,
    cameras: Callable[[], Mapping[str, CameraReading]] = dict,
    runtime: Callable[[], RuntimeReading | None] = lambda: None,
    *,
    clock: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> Callable[[], HealthProbe]:
    """What the publisher adds to each health message: cameras, config and runtime, as they are now."""

    def probe() -> HealthProbe:
        status = config_sync.status()
        readings = cameras()
        box = runtime()
        return HealthProbe(
            config_version=status.applied_version,
            software_version=software_version,
            cameras=tuple(
                camera_health(camera_id, readings[camera_id], clock, monotonic)
                for camera_id in sorted(readings)
            ),
            config=config_health(status),
            runtime=None if box is None else runtime_health(box),
        )

    return probe


def utc_of_monotonic(monotonic_ts: float, clock: Clock, monotonic: Callable[[], float]) -> datetime:
    """Wall time of a monotonic reading, through the injected clocks."""
    return clock() - timedelta(seconds=monotonic() - monotonic_ts)
