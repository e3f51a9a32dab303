"""The edge node's composition root: `curbwatch edge run --config node.yaml`.

Start, in order: metrics endpoint, the SQLite database (outbox + incident state, WAL),
zones, the shared detector, one CameraPipeline per camera, config sync (the cached config
first), the publisher (drains what an earlier run left unsent), the detector scheduler,
the camera workers, the status loop. One stop event (SIGINT/SIGTERM set it); `stop()`
stops the parts in reverse order and gives the publisher `flush_timeout_s` to drain.

Threads: one per camera (capture), one detector worker that also runs every camera's
pipeline (tracker, zones, incidents, evidence, outbox) so the database has one writer,
the publisher's drain and network threads, the status loop, and the metrics server.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

import sqlite_utils

from edge.capture import CameraSpec, CameraWorker, DecodeMode, SourceFactory, default_source_factory
from edge.capture import CameraState as CaptureState
from edge.config_sync import ConfigSync
from edge.evidence import EvidencePolicy, render_evidence
from edge.incident_store import IncidentStore
from edge.incidents import IncidentEngine, IncidentEvent, IncidentStoreLike, StreamStart
from edge.incidents import IncidentEventKind as EngineEventKind
from edge.metrics import NodeMetrics, NullEndpoint, serve_metrics
from edge.node_config import CameraSection, DetectorSection, KeyframesOnly, NodeConfig, load_node_config
from edge.scheduler import DetectorScheduler
from edge.status import (
    CameraCounts,
    CameraReading,
    CameraStatusReporter,
    LatestView,
    RateMeter,
    StatusLoop,
    health_probe,
)
from edge.track import Tracker, TrackerConfig
from models.detector import Detector
from models.types import Detections, Frame, Image
from uplink.clock import Clock, utc_now
from uplink.messages import DetectedObject, IncidentMessage
from uplink.messages import Evidence as WireEvidence
from uplink.messages import IncidentEventKind as WireEventKind
from uplink.messages import Shop as WireShop
from uplink.mqtt import ClientFactory, new_client
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.topics import Topics
from zones.loader import load_zone_file
from zones.membership import ZoneMembership
from zones.schema import ZoneFile

log = logging.getLogger(__name__)

DECODE = {
    KeyframesOnly.AUTO: DecodeMode.AUTO,
    KeyframesOnly.ON: DecodeMode.KEYFRAMES,
    KeyframesOnly.OFF: DecodeMode.FULL,
}


def capture_url(url: str) -> str:
    """node.yaml's URL forms -> what edge.capture opens (a file path, a device index)."""
    if url.startswith("file://"):
        return url.removeprefix("file://")
    if url.startswith("usb:"):
        return url.removeprefix("usb:")
    return url


def default_detector(section: DetectorSection) -> Detector:
    from models.config import load_detector  # onnxruntime only when a node really runs

    return load_detector(section.model, threads=section.threads, conf_threshold=section.conf)


class TimedDetector:
    """The shared detector, timing each call for the latency histogram.

    The scheduler calls `on_result` in the thread that just ran `detect`, so the
    duration is handed over in a thread-local and labelled with the frame's camera there.
    """

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self._local = threading.local()

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._detector.class_names

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self._detector.input_size_wh

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        started = time.perf_counter()
        try:
            return self._detector.detect(image, conf_threshold)
        finally:
            self._local.last_s = time.perf_counter() - started

    def last_duration_s(self) -> float | None:
        """Seconds of this thread's last `detect`, once; None if already taken."""
        value: float | None = getattr(self._local, "last_s", None)
        self._local.last_s = None
        return value


def open_edge_database(path: Path) -> sqlite_utils.Database:
    """WAL, synchronous FULL (an edge box loses power). The connection is opened here and then
    used only by the detector thread, hence check_same_thread=False; the publisher has its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(sqlite3.connect(str(path), timeout=30.0, check_same_thread=False))
    db.enable_wal()
    db.execute("PRAGMA synchronous=FULL")
    return db


def software_version() -> str | None:
    try:
        return version("curbwatch")
    except PackageNotFoundError:
        return None


# -- one camera's logic ---------------------------------------------------------------------

UNKNOWN_SHOP = WireShop(id="unknown", name="")
RECENT_DETECTIONS = 64  # frames whose detections stay at hand for evidence blurring
EVIDENCE = EvidencePolicy()


@dataclass(frozen=True)
class PipelineParts:
    """What every camera pipeline shares; one database connection, used by the detector thread."""

    node_id: str
    outbox: Outbox
    store: IncidentStoreLike
    topics: Topics
    detector: Detector
    metrics: NodeMetrics
    clock: Clock
    monotonic: Callable[[], float]
    id_factory: Callable[[], uuid.UUID | str]
    conf_threshold: float
    notify: Callable[[], None]


def incident_message(
    event: IncidentEvent, node_id: str, shop: WireShop, evidence_jpeg: bytes | None
) -> IncidentMessage:
    """The wire form of one engine event (uplink.messages.IncidentMessage)."""
    primary = event.primary
    objects = [DetectedObject(label=o.label, confidence=o.confidence, bbox=o.bbox) for o in event.objects]
    dwell_s = max(0.0, event.t - event.first_seen_t)
    return IncidentMessage(
        incident_id=uuid.UUID(event.incident_id),
        seq=event.seq,
        event=WireEventKind(event.event.value),
        node_id=node_id,
        camera_id=event.camera_id,
        zone_id=event.zone_id,
        shop=shop,
        label=primary.label if primary else "unknown",
        confidence=primary.confidence if primary else 0.0,
        bbox=primary.bbox if primary else (0.0, 0.0, 0.0, 0.0),
        objects=objects[:100],
        first_seen_at=(event.utc - timedelta(seconds=dwell_s)).astimezone(UTC),
        at=event.utc.astimezone(UTC),
        dwell_s=dwell_s,
        evidence=None if evidence_jpeg is None else WireEvidence.from_jpeg(evidence_jpeg),
    )


class CameraPipeline:
    """Tracker -> zones -> incidents -> evidence -> outbox for one camera, in the detector thread.

    Each frame's engine step and its outbox rows are one transaction, so incident state and
    events commit together. If that transaction fails (OutboxFull, disk), the engine is rebuilt
    from the store, as after a restart, so memory never runs ahead of what was committed.
    New zones (`replace_zones`, any thread) are swapped in before the next frame: a fresh
    engine resumes the stored open incidents of zones that still exist and clears the others.
    """

    def __init__(self, camera_id: str, zone_file: ZoneFile, parts: PipelineParts, *, live: bool) -> None:
        self.camera_id = camera_id
        self.parts = parts
        # Live timestamps are monotonic seconds; file timestamps start at 0 when the file does.
        zero = parts.clock() - timedelta(seconds=parts.monotonic() if live else 0.0)
        self.wall_time = StreamStart(zero)
        conf = parts.conf_threshold
        self.tracker = Tracker(TrackerConfig(high_confidence=max(conf, 0.3), low_confidence=conf))
        self.topic = parts.topics.incident(parts.node_id, camera_id)
        self.latest: LatestView | None = None
        self.zone_version: int | None = None
        self.analysed = RateMeter()
        # Read by the health probe; until the first frame resumes them, the stored ones count.
        self.incidents_open = len(parts.store.load_open(camera_id))
        self._shops: dict[str, WireShop] = {}
        self._recent: deque[tuple[float, Detections]] = deque(maxlen=RECENT_DETECTIONS)
        self._lock = threading.Lock()
        self._pending: tuple[ZoneFile, int | None] | None = None
        self._membership: ZoneMembership | None = None
        self.zone_file = zone_file
        self.engine: IncidentEngine = self._install(zone_file)

    def replace_zones(self, zone_file: ZoneFile, version: int | None) -> None:
        with self._lock:
            self._pending = (zone_file, version)

    def process(self, frame: Frame, detections: Detections) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.engine = self._install(pending[0])
            self.zone_version = pending[1]
            log.info("camera %s: zones of config version %s in use", self.camera_id, pending[1])
        self.parts.metrics.frames_analysed.labels(camera=self.camera_id).inc()
        self.analysed.mark(self.parts.monotonic())
        self._recent.append((frame.ts, detections))
        self.latest = LatestView(frame, detections, self.parts.monotonic())
        if self._membership is None or self._membership.resolution_wh != frame.resolution_wh:
            self._membership = ZoneMembership(self.zone_file, frame.resolution_wh)
        tracked = self.tracker.update(detections, frame.ts)
        checks = self._membership.evaluate(tracked.detections, self.wall_time(frame.ts))
        try:
            with self.parts.outbox.transaction():
                events = self.engine.step(frame, tracked, checks)
                for event in events:
                    self.parts.outbox.enqueue(self._message(event), self.topic)
        except Exception:
            log.exception(
                "camera %s: frame ts=%.3f not committed; resuming from the store", self.camera_id, frame.ts
            )
            self.engine = self._new_engine()
            return
        self.incidents_open = len(self.engine.open_incidents())
        if events:
            self._count(events)
            self.parts.notify()

    def _install(self, zone_file: ZoneFile) -> IncidentEngine:
        self.zone_file = zone_file
        self._membership = None
        for zone in zone_file.zones:
            if zone.shop is not None:
                self._shops[zone.id] = WireShop(id=zone.shop.id, name=zone.shop.name)
        return self._new_engine()

    def _new_engine(self) -> IncidentEngine:
        parts = self.parts
        return IncidentEngine(self.zone_file, self.camera_id, parts.store, parts.id_factory, self.wall_time)

    def _message(self, event: IncidentEvent) -> IncidentMessage:
        shop = self._shops.get(event.zone_id, UNKNOWN_SHOP)
        if event.shop_id is not None:
            shop = WireShop(id=event.shop_id, name=event.shop_name or "")
        return incident_message(event, self.parts.node_id, shop, self._evidence(event))

    def _evidence(self, event: IncidentEvent) -> bytes | None:
        frame = event.evidence_frame
        if frame is None:
            return None
        zone = next((z for z in self.zone_file.zones if z.id == event.zone_id), None)
        rendered = render_evidence(
            frame.pixels,
            zone_polygon=zone.polygon if zone is not None else (),
            objects=event.objects,
            detections=self._detections_of(frame),
            camera_id=self.camera_id,
            incident_id=event.incident_id,
            local_time=event.utc.astimezone(self.zone_file.tz),
            policy=EVIDENCE,
        )
        return rendered.annotated_jpeg

    def _detections_of(self, frame: Frame) -> Detections:
        """Every detection of the evidence frame (its people get blurred); detect again if gone."""
        for ts, detections in reversed(self._recent):
            if ts == frame.ts:
                return detections
        return self.parts.detector.detect(frame.pixels, self.parts.conf_threshold)

    def _count(self, events: list[IncidentEvent]) -> None:
        metrics = self.parts.metrics
        for event in events:
            metrics.events_enqueued.labels(camera=self.camera_id).inc()
            if event.event is EngineEventKind.OPENED:
                metrics.incidents_opened.labels(camera=self.camera_id, zone=event.zone_id).inc()
            elif event.event is EngineEventKind.CLEARED:
                metrics.incidents_cleared.labels(camera=self.camera_id, zone=event.zone_id).inc()


@dataclass(frozen=True)
class NodeSeams:
    """What a test replaces: everything else is built from the NodeConfig."""

    detector_factory: Callable[[DetectorSection], Detector] = default_detector
    client_factory: ClientFactory = new_client
    source_factory: Callable[[CameraSpec], SourceFactory] | None = None  # None: edge.capture's default
    clock: Clock = utc_now
    monotonic: Callable[[], float] = time.monotonic
    id_factory: Callable[[], uuid.UUID | str] = uuid.uuid4
    realtime_files: bool = False  # replay file cameras at recorded speed


class NodeRuntime:
    def __init__(
        self,
        config: NodeConfig,
        seams: NodeSeams | None = None,
        *,
        stop_event: threading.Event | None = None,
        flush_timeout_s: float = 10.0,
    ) -> None:
        self.config = config
        self.seams = seams or NodeSeams()
        self.stop_event = stop_event or threading.Event()
        self.flush_timeout_s = flush_timeout_s
        self.metrics = NodeMetrics()
        self.topics = Topics(config.mqtt.prefix)
        self.pipelines: dict[str, CameraPipeline] = {}
        self.workers: dict[str, CameraWorker] = {}
        self._status_stop = threading.Event()
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        config, seams = self.config, self.seams
        cameras = config.enabled_cameras
        self.metrics.add_cameras(camera.id for camera in cameras)
        self.endpoint = serve_metrics(self.metrics, config.metrics.bind, config.metrics.port)
        self.db = open_edge_database(config.outbox.path)
        retention = timedelta(days=config.outbox.retention_days)
        self.outbox = Outbox(
            self.db, max_bytes=config.outbox.max_bytes, retention=retention, clock=seams.clock
        )
        store = IncidentStore(self.db)
        self.detector = TimedDetector(seams.detector_factory(config.detector))
        parts = PipelineParts(
            node_id=config.node_id,
            outbox=self.outbox,
            store=store,
            topics=self.topics,
            detector=self.detector,
            metrics=self.metrics,
            clock=seams.clock,
            monotonic=seams.monotonic,
            id_factory=seams.id_factory,
            conf_threshold=config.detector.conf,
            notify=self._notify_publisher,
        )
        for camera in cameras:
            zone_file = load_zone_file(camera.zones, self.detector.class_names)
            self.pipelines[camera.id] = CameraPipeline(
                camera.id, zone_file, parts, live=self._spec(camera).kind.live
            )
        self.config_sync = ConfigSync(
            config.node_id,
            self.pipelines,
            config.config_cache_path,
            known_classes=self.detector.class_names,
            metrics=self.metrics,
            clock=seams.clock,
        )
        self.config_sync.load_cached()
        self.publisher = Publisher(
            config.mqtt.settings(config.node_id),
            config.outbox.path,
            health_interval_s=config.health.interval_s,
            health_probe=health_probe(
                self.config_sync,
                software_version(),
                self._camera_readings,
                clock=seams.clock,
                monotonic=seams.monotonic,
            ),
            on_config=self.config_sync.on_config,
            on_config_rejected=self.config_sync.on_rejected,
            client_factory=seams.client_factory,
            clock=seams.clock,
            monotonic=seams.monotonic,
        )
        self.publisher.start()
        self.scheduler = DetectorScheduler(
            self.detector, self._on_result, conf_threshold=config.detector.conf
        )
        reporter = CameraStatusReporter(
            config.node_id,
            self.publisher,
            self.metrics,
            self._last_frame,
            clock=seams.clock,
            monotonic=seams.monotonic,
        )
        for camera in cameras:
            spec = self._spec(camera)
            queue = spec.make_queue()
            self.scheduler.add_camera(camera.id, queue, spec.sample_interval_s)
            factory = seams.source_factory(spec) if seams.source_factory else default_source_factory(spec)
            self.workers[camera.id] = CameraWorker(spec, queue, source_factory=factory, on_state=reporter)
        self.scheduler.start()
        for worker in self.workers.values():
            worker.start()
        self.status_loop = StatusLoop(
            self.publisher,
            self.metrics,
            self._latest_views,
            lambda: self.publisher.stats().backlog,
            self._camera_counts,
            snapshot_interval_s=config.health.snapshot_interval_s,
            snapshot_max_side_px=config.health.snapshot_max_side_px,
            stop_event=self._status_stop,
        )
        self.status_loop.start()
        self._started = True
        log.info("node %s running %d cameras", config.node_id, len(cameras))

    def stop(self) -> int:
        """Stop in reverse order; the number of events left unsent for the next run."""
        if not self._started:
            return 0
        self._started = False
        self.stop_event.set()
        self._status_stop.set()
        self.status_loop.join(5.0)
        for worker in self.workers.values():
            worker.stop()
        for worker in self.workers.values():
            if not worker.join(15.0):
                log.error("camera %s: worker did not stop", worker.camera_id)
        self.scheduler.stop()
        if not self.scheduler.join(30.0):
            log.error("detector worker did not stop; closing the database anyway")
        self.db.close()
        unsent = self.publisher.stop(self.flush_timeout_s)
        self.endpoint.close()
        self.endpoint = NullEndpoint()
        log.info(
            "node %s stopped; %d events wait in the outbox for the next run", self.config.node_id, unsent
        )
        return unsent

    def run(self) -> int:
        """Start, wait for the stop event (SIGINT/SIGTERM in the main thread), stop."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self._on_signal)
        self.start()
        try:
            self.stop_event.wait()
        finally:
            self.stop()
        return 0

    def wait_cameras_done(self, timeout_s: float) -> bool:
        """File cameras: True once every worker ended and the detector analysed every frame."""
        deadline = time.monotonic() + timeout_s
        for worker in self.workers.values():
            if not worker.join(max(0.0, deadline - time.monotonic())):
                return False
        while time.monotonic() < deadline:
            schedules = self.scheduler.cameras().values()
            if all(s.queue.exhausted and not s.in_flight for s in schedules):
                return True
            time.sleep(0.05)
        return False

    # -- wiring -------------------------------------------------------------------------------

    def _spec(self, camera: CameraSection) -> CameraSpec:
        return CameraSpec(
            camera_id=camera.id,
            url=capture_url(camera.url),
            sample_interval_s=camera.sample_interval_s,
            decode=DECODE[camera.keyframes_only],
            realtime=camera.realtime or self.seams.realtime_files,
            loop=camera.loop,
        )

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        self.stop_event.set()

    def _on_result(self, frame: Frame, detections: Detections) -> None:
        duration_s = self.detector.last_duration_s()
        if duration_s is not None:
            self.metrics.detection_latency.labels(camera=frame.camera_id).observe(duration_s)
        self.pipelines[frame.camera_id].process(frame, detections)

    def _notify_publisher(self) -> None:
        self.publisher.notify()

    def _latest_views(self) -> Mapping[str, LatestView]:
        views = {camera_id: pipeline.latest for camera_id, pipeline in self.pipelines.items()}
        return {camera_id: view for camera_id, view in views.items() if view is not None}

    def _camera_counts(self) -> dict[str, CameraCounts]:
        schedules = self.scheduler.cameras()
        return {
            camera_id: CameraCounts(worker.stats().pictures, schedules[camera_id].dropped, len(worker.queue))
            for camera_id, worker in self.workers.items()
        }

    def _camera_readings(self) -> dict[str, CameraReading]:
        """For health (the publisher's drain thread): workers may not exist yet at the first one."""
        now = self.seams.monotonic()
        readings = {}
        for camera_id, pipeline in self.pipelines.items():
            worker = self.workers.get(camera_id)
            stats = None if worker is None else worker.stats()
            readings[camera_id] = CameraReading(
                state=CaptureState.STARTING if stats is None else stats.state,
                last_frame_monotonic=None if stats is None else stats.last_picture_at,
                fps_analysed=pipeline.analysed.per_second(now),
                incidents_open=pipeline.incidents_open,
            )
        return readings

    def _last_frame(self, camera_id: str) -> float | None:
        worker = self.workers.get(camera_id)
        return None if worker is None else worker.stats().last_picture_at


def run_node(config_path: Path) -> int:
    """The CLI's entry: load and check node.yaml, install the log scrubber, run until signalled."""
    from edge.logscrub import install

    install()
    config = load_node_config(config_path)
    return NodeRuntime(config).run()
