"""The edge node's composition root: `curbwatch edge run --config node.yaml`.

Start, in order: metrics endpoint, the SQLite database (outbox + incident state, WAL),
zones, the shared detector, one CameraPipeline per camera, config sync (the cached config
first), the publisher (drains what an earlier run left unsent), the detector scheduler,
the camera workers, the status loop. One stop event (SIGINT/SIGTERM set it); `stop()`
stops the parts in reverse order and gives the publisher `flush_timeout_s` to drain.

Threads: one per camera (capture), one scene worker (every camera's scene model, fed by the
capture threads), `detector.workers` detector workers (each with its own copy of the model),
the publisher's drain and network threads, the status loop, and the metrics server. The worker
that detected a frame then runs its camera's pipeline (tracker, zones, incidents, evidence,
outbox), one pipeline at a time, so the database has one writer. A camera with a main stream
adds a short-lived thread per picture grab (edge.capture.StillCamera), started ahead of an
event; no detector worker waits for one.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

import sqlite_utils

from edge.capture import (
    CameraSpec,
    CameraWorker,
    DecodeMode,
    SourceFactory,
    StillCamera,
    default_source_factory,
)
from edge.capture import CameraState as CaptureState
from edge.capture.sources import Picture
from edge.evidence.faces import FaceFinder
from edge.incidents.store import IncidentStore
from edge.node.config import CameraSection, DetectorSection, KeyframesOnly, NodeConfig, load_node_config
from edge.node.config_sync import ConfigSync
from edge.node.metrics import NodeMetrics, NullEndpoint, serve_metrics
from edge.node.pipeline import EVIDENCE, NO_MAIN_STREAM, CameraPipeline, MainStream, PipelineParts
from edge.node.scheduler import DetectorScheduler
from edge.node.status import (
    CameraCounts,
    CameraReading,
    CameraStatusReporter,
    CoreShare,
    LatestView,
    RecentDurations,
    RuntimeReading,
    SceneHealth,
    StatusLoop,
    health_probe,
)
from edge.node.zone_source import ZoneDocument, read_zone_file
from edge.scene.model import SceneReading
from edge.scene.static_objects import StaticObjects, TextFinder
from edge.scene.worker import SceneWorker
from models.detector import Detector
from models.types import Detections, Frame, Image
from uplink.clock import Clock, utc_now
from uplink.messages import SceneView
from uplink.mqtt import ClientFactory, new_client
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.topics import Topics

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

    return load_detector(
        section.model, threads=section.threads, conf_threshold=section.conf, backend=section.backend
    )


class TimedDetector:
    """One copy of the detector, called by one thread at a time, timing each call.

    The scheduler calls `on_result` in the thread that just ran `detect`, so the duration is
    handed over in a thread-local (shared by every copy) and labelled with the frame's camera
    there. The lock: the first worker's copy also serves the pipelines' evidence detections,
    and an OpenVINO infer request must not run twice at once.
    """

    _local = threading.local()

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self._lock = threading.Lock()

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._detector.class_names

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self._detector.input_size_wh

    @property
    def runtime(self) -> str:
        """The backend and the engine that runs it (e.g. NanoDetDetector on openvino ...)."""
        engine = getattr(self._detector, "runtime", None)  # the ONNX backends name their engine
        return (
            f"{type(self._detector).__name__} on {engine if isinstance(engine, str) else 'its own runtime'}"
        )

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        with self._lock:
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


def default_face_detector(section: DetectorSection) -> FaceFinder:
    from models.faces import load_face_detector

    return load_face_detector(backend=section.backend)  # one thread: it runs once per evidence picture


def default_text_finder(section: DetectorSection) -> TextFinder:
    from models.text import load_text_detector

    return load_text_detector(backend=section.backend)


@dataclass(frozen=True)
class NodeSeams:
    """What a test replaces: everything else is built from the NodeConfig."""

    detector_factory: Callable[[DetectorSection], Detector] = default_detector
    face_detector_factory: Callable[[DetectorSection], FaceFinder] = default_face_detector
    text_finder_factory: Callable[[DetectorSection], TextFinder] = default_text_finder
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
        self._pipeline_turn = threading.Lock()
        self.scene_worker = SceneWorker()
        self.workers: dict[str, CameraWorker] = {}
        self.detect_times = RecentDurations()
        self._decode_shares: dict[str, CoreShare] = {}  # read by the health probe only
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
        # Which engine `backend: auto` chose, said once: the figures in health depend on it.
        log.info("detector: %s", self.detector.runtime)
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
            faces=seams.face_detector_factory(config.detector) if config.evidence.blur_faces else None,
            blur_outside_zones=config.evidence.blur_outside_zones,
            on_zones=self._report_zones,
        )
        text_finder = None
        if any(config.scene_for(c).enabled and config.scene_for(c).signboards for c in cameras):
            text_finder = seams.text_finder_factory(config.detector)
        for camera in cameras:
            zone_file, document = read_zone_file(camera.zones, self.detector.class_names)
            self.pipelines[camera.id] = CameraPipeline(
                camera.id,
                zone_file,
                parts,
                live=self._spec(camera).kind.live,
                scene=self._scene(camera, text_finder),
                scene_fed_by_capture=True,
                document=document,
                main_stream=self._main_stream(camera),
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
                self._runtime_reading,
                clock=seams.clock,
                monotonic=seams.monotonic,
            ),
            on_config=self.config_sync.on_config,
            on_config_rejected=self.config_sync.on_rejected,
            ack_timeout_s=config.outbox.ack_timeout_s or None,
            client_factory=seams.client_factory,
            clock=seams.clock,
            monotonic=seams.monotonic,
        )
        self.publisher.start()
        for camera_id, pipeline in self.pipelines.items():  # the cached config's, if it has one
            newest = pipeline.newest_document
            if newest is not None:
                self._report_zones(camera_id, newest)
        copies = [self.detector]
        copies += [
            TimedDetector(seams.detector_factory(config.detector)) for _ in range(config.detector.workers - 1)
        ]
        self.scheduler = DetectorScheduler(
            copies.pop,  # each worker thread takes its own copy as it starts
            self._on_result,
            workers=config.detector.workers,
            conf_threshold=config.detector.conf,
        )
        self.metrics.detector_threads.set(config.detector.threads)
        self.metrics.detector_workers.set(self.scheduler.workers)
        self.reporter = reporter = CameraStatusReporter(
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
            self.workers[camera.id] = CameraWorker(
                spec, queue, source_factory=factory, on_state=reporter, on_picture=self._scene_tap(camera.id)
            )
        self.scheduler.start()
        self.scene_worker.start()
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
        self.scene_worker.stop()
        self.scene_worker.join(5.0)
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
            analysis_width_px=camera.analysis_width_px,
        )

    def _main_stream(self, camera: CameraSection) -> MainStream:
        if camera.main_stream_url is None:
            return NO_MAIN_STREAM
        fallbacks = self.metrics.evidence_fallbacks.labels(camera=camera.id)
        return StillCamera(
            camera.id,
            capture_url(camera.main_stream_url),
            timeout_s=camera.main_stream_timeout_s,
            max_age_s=camera.main_stream_max_age_s,
            width_px=EVIDENCE.max_long_side_px,  # scaled while converting: never a full 1080p copy
            on_fallback=lambda _reason: fallbacks.inc(),
        )

    def _scene(self, camera: CameraSection, text_finder: TextFinder | None) -> StaticObjects | None:
        settings = self.config.scene_for(camera)
        if not settings.enabled:
            return None
        finder = text_finder if settings.signboards else None
        return StaticObjects(settings, finder, on_reading=lambda reading: self._on_scene(camera.id, reading))

    def _scene_tap(self, camera_id: str) -> Callable[[Picture], None] | None:
        """The capture thread's picture callback: the scene model on pictures decoded anyway."""
        pipeline = self.pipelines[camera_id]
        scene = pipeline.scene
        if scene is None:
            return None

        def tap(picture: Picture) -> None:
            if pipeline.uses_scene and scene.claim(picture.ts):
                self.scene_worker.submit(
                    camera_id, scene, picture.to_bgr_width(scene.settings.width_px), picture.ts
                )

        return tap

    def _on_scene(self, camera_id: str, reading: SceneReading) -> None:
        metrics = self.metrics
        metrics.static_regions.labels(camera=camera_id).set(len(reading.regions))
        metrics.scene_seconds.labels(camera=camera_id).observe(reading.elapsed_s)
        if reading.relearned:
            metrics.scene_relearns.labels(camera=camera_id).inc()
        self.reporter.view(camera_id, SceneView(reading.state.value))

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        self.stop_event.set()

    def _on_result(self, frame: Frame, detections: Detections) -> None:
        duration_s = self.detector.last_duration_s()
        if duration_s is not None:
            self.metrics.detection_latency.labels(camera=frame.camera_id).observe(duration_s)
            self.detect_times.add(duration_s)
        with self._pipeline_turn:  # one writer to the database, whichever worker detected the frame
            self.pipelines[frame.camera_id].process(frame, detections)

    def _notify_publisher(self) -> None:
        self.publisher.notify()

    def _report_zones(self, camera_id: str, document: ZoneDocument) -> None:
        """Tell the review server which zone document the camera runs (retained, latest only)."""
        publisher = getattr(self, "publisher", None)  # cameras install zones before it exists
        if publisher is not None:
            publisher.publish_zones(document.report(self.config.node_id, camera_id, self.seams.clock()))

    def _latest_views(self) -> Mapping[str, LatestView]:
        views = {camera_id: pipeline.latest for camera_id, pipeline in self.pipelines.items()}
        return {camera_id: view for camera_id, view in views.items() if view is not None}

    def _camera_counts(self) -> dict[str, CameraCounts]:
        schedules = self.scheduler.cameras()
        counts = {}
        for camera_id, worker in self.workers.items():
            stats = worker.stats()
            counts[camera_id] = CameraCounts(
                stats.pictures,
                schedules[camera_id].dropped,
                len(worker.queue),
                capturing=stats.state is not CaptureState.STOPPED,
                demux_s=stats.demux_s,
                decode_s=stats.decode_s,
                convert_s=stats.convert_s,
            )
        return counts

    def _camera_readings(self) -> dict[str, CameraReading]:
        """For health (the publisher's drain thread): workers may not exist yet at the first one."""
        now = self.seams.monotonic()
        readings = {}
        for camera_id, pipeline in self.pipelines.items():
            worker = self.workers.get(camera_id)
            stats = None if worker is None else worker.stats()
            share = None
            if stats is not None:
                capture_cpu_s = stats.demux_s + stats.decode_s + stats.convert_s
                share = self._decode_shares.setdefault(camera_id, CoreShare()).update(now, capture_cpu_s)
            readings[camera_id] = CameraReading(
                state=CaptureState.STARTING if stats is None else stats.state,
                last_frame_monotonic=None if stats is None else stats.last_picture_at,
                fps_analysed=pipeline.analysed.per_second(now),
                incidents_open=pipeline.incidents_open,
                scene=scene_health(pipeline.scene) if pipeline.uses_scene else None,
                decode_share=share,
            )
        return readings

    def _runtime_reading(self) -> RuntimeReading:
        """For health (the publisher's drain thread), also before the cameras started."""
        workers = tuple(self.workers.values())
        return RuntimeReading(
            detector_threads=self.config.detector.threads,
            detector_workers=self.config.detector.workers,
            capture_threads=sum(worker.state is not CaptureState.STOPPED for worker in workers),
            detect_ms=self.detect_times.mean_p95_ms(),
        )

    def _last_frame(self, camera_id: str) -> float | None:
        worker = self.workers.get(camera_id)
        return None if worker is None else worker.stats().last_picture_at


def scene_health(scene: StaticObjects | None) -> SceneHealth | None:
    if scene is None:
        return None
    snapshot = scene.snapshot()
    reading = snapshot.reading
    if reading is None:
        return SceneHealth(SceneView.LEARNING, 0, snapshot.relearns, 0.0)
    return SceneHealth(
        SceneView(reading.state.value), len(reading.regions), snapshot.relearns, reading.elapsed_s * 1000.0
    )


def run_node(config_path: Path) -> int:
    """The CLI's entry: load and check node.yaml, install the log scrubber, run until signalled."""
    from edge.logscrub import install

    install()
    config = load_node_config(config_path)
    return NodeRuntime(config).run()
