"""One camera's logic in the edge node: tracker -> zones -> incidents -> evidence -> outbox.

`CameraPipeline` runs in the detector thread (edge.node.app's composition root builds one per
camera from the shared `PipelineParts`); `incident_message` is the wire form of an engine event.

A camera with a main stream (node.yaml `main_stream_url`) has its evidence drawn on a recent
picture of it. The detector thread never waits for one: while the engine says an event with
evidence may be near (`IncidentEngine.evidence_due`), `MainStream.prepare` has one grabbed in
its own thread, and the event takes it if it is fresh enough. The incident's normalised boxes
and zone map onto it whatever its size and aspect ratio, since both streams show the same
field of view. Its people are blurred as the analysed frame saw them (scaled) and as the
detector finds them in the picture itself. Without a fresh picture the evidence is drawn on
the analysed frame, as for any other camera.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, timedelta
from typing import Protocol

import numpy as np

from edge.evidence.faces import FaceFinder, faces_at
from edge.evidence.render import DrawnObject, Evidence, EvidencePolicy, blur_outside, render_evidence
from edge.incidents.engine import IncidentEngine
from edge.incidents.persistence import IncidentStoreLike
from edge.incidents.types import IncidentEvent, IncidentObject, StreamStart
from edge.incidents.types import IncidentEventKind as EngineEventKind
from edge.node.metrics import NodeMetrics
from edge.node.status import LatestView, RateMeter
from edge.node.zone_source import ZoneDocument
from edge.scene.static_objects import StaticObjects, goods_classes, used_by
from edge.track import Tracker, TrackerConfig
from models.classes import PEOPLE_CLASSES
from models.detector import Detector
from models.types import Detections, Frame, Image
from uplink.clock import Clock
from uplink.messages import DetectedObject, IncidentMessage
from uplink.messages import Evidence as WireEvidence
from uplink.messages import IncidentEventKind as WireEventKind
from uplink.messages import Shop as WireShop
from uplink.outbox import Outbox
from uplink.topics import Topics
from zones.membership import ZoneMembership
from zones.schema import ZoneFile, ZoneKind

log = logging.getLogger(__name__)

UNKNOWN_SHOP = WireShop(id="unknown", name="")
REPLAY_MAIN_STREAM_WAIT_S = 30.0  # a replayed recording's evidence waits this long for its picture
SCENE_WAIT_S = 2.0  # at most this long for the scene thread to reach a replayed frame's time
RECENT_DETECTIONS = 64  # frames whose detections stay at hand for evidence blurring
EVIDENCE = EvidencePolicy()


class MainStream(Protocol):
    """A camera's full-resolution stream for evidence (edge.capture.StillCamera)."""

    max_age_s: float  # how old a picture evidence may use; also how far ahead to prepare one

    def prepare(self) -> None:
        """Have a fresh picture grabbed in the background (an event with evidence may be near)."""
        ...

    def take(self, wait_s: float = 0.0) -> Image | None:
        """A fresh picture, or None (the analysed frame is used); waits at most wait_s for one."""
        ...


class NoMainStream:
    """A camera without a main stream: evidence comes from the analysed frame."""

    max_age_s = 0.0

    def prepare(self) -> None:
        return None

    def take(self, wait_s: float = 0.0) -> Image | None:
        return None


NO_MAIN_STREAM = NoMainStream()


@dataclass(frozen=True)
class EvidenceView:
    """What evidence is drawn on: pixels, the incident's objects and the detections in their pixels."""

    pixels: Image
    objects: tuple[IncidentObject, ...]
    detections: Detections


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
    faces: FaceFinder | None = None  # faces blurred in evidence as well as the detector's people
    blur_outside_zones: bool = False
    on_zones: Callable[[str, ZoneDocument], None] = lambda _camera_id, _document: None  # now in use


def incident_message(
    event: IncidentEvent,
    node_id: str,
    shop: WireShop,
    evidence_jpeg: bytes | None,
    before_now_jpeg: bytes | None = None,
    evidence_objects: Sequence[DrawnObject] = (),
    zones: ZoneDocument | None = None,
) -> IncidentMessage:
    """The wire form of one engine event (uplink.messages.IncidentMessage).

    evidence_objects: the boxes drawn in evidence_jpeg, tag 1 first (Evidence.objects).
    """
    primary = event.primary
    objects = [DetectedObject(label=o.label, confidence=o.confidence, bbox=o.bbox) for o in event.objects]
    drawn = [DetectedObject(label=o.label, confidence=o.confidence, bbox=o.bbox) for o in evidence_objects]
    dwell_s = max(0.0, event.dwell_s)  # counted across restarts, unlike t - first_seen_t
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
        first_seen_at=event.first_seen_utc.astimezone(UTC),
        at=event.utc.astimezone(UTC),
        dwell_s=dwell_s,
        evidence=None if evidence_jpeg is None else WireEvidence.from_jpeg(evidence_jpeg),
        before_now=None if before_now_jpeg is None else WireEvidence.from_jpeg(before_now_jpeg),
        evidence_objects=None if evidence_jpeg is None else drawn[:100],
        zones_sha256=None if zones is None else zones.sha256,
        zones_config_version=None if zones is None else zones.config_version,
    )


class CameraPipeline:
    """Tracker -> zones -> incidents -> evidence -> outbox for one camera, in the detector thread.

    Each frame's engine step and its outbox rows are one transaction, so incident state and
    events commit together. If that transaction fails (OutboxFull, disk), the engine is rebuilt
    from the store, as after a restart, so memory never runs ahead of what was committed.
    New zones (`replace_zones`, any thread) are swapped in before the next frame: a fresh
    engine resumes the stored open incidents of zones that still exist and clears the others.
    """

    def __init__(
        self,
        camera_id: str,
        zone_file: ZoneFile,
        parts: PipelineParts,
        *,
        live: bool,
        scene: StaticObjects | None = None,
        scene_fed_by_capture: bool = False,
        document: ZoneDocument | None = None,
        main_stream: MainStream = NO_MAIN_STREAM,
    ) -> None:
        self.camera_id = camera_id
        self.main_stream = main_stream
        self.parts = parts
        self.live = live
        self.scene = scene
        self.scene_fed_by_capture = scene_fed_by_capture
        self.uses_scene = False  # a zone counts `static object` / `signboard` (set by _install)
        # Live timestamps are monotonic seconds; file timestamps start at 0 when the file does.
        zero = parts.clock() - timedelta(seconds=parts.monotonic() if live else 0.0)
        self.wall_time = StreamStart(zero)
        conf = parts.conf_threshold
        self.tracker = Tracker(TrackerConfig(high_confidence=max(conf, 0.3), low_confidence=conf))
        self.topic = parts.topics.incident(parts.node_id, camera_id)
        self.latest: LatestView | None = None
        self.zone_version: int | None = None
        self.zone_document = document  # the text of zone_file, for reports and incidents
        self.analysed = RateMeter()
        # Read by the health probe; until the first frame resumes them, the stored ones count.
        self.incidents_open = len(parts.store.load_open(camera_id))
        self._shops: dict[str, WireShop] = {}
        self._recent: deque[tuple[float, Detections]] = deque(maxlen=RECENT_DETECTIONS)
        self._lock = threading.Lock()
        self._pending: tuple[ZoneFile, int | None, ZoneDocument | None] | None = None
        self._membership: ZoneMembership | None = None
        self.zone_file = zone_file
        self.engine: IncidentEngine = self._install(zone_file)

    def replace_zones(
        self, zone_file: ZoneFile, version: int | None, document: ZoneDocument | None = None
    ) -> None:
        with self._lock:
            self._pending = (zone_file, version, document)

    @property
    def newest_document(self) -> ZoneDocument | None:
        """The document in use, or the one waiting for the next frame."""
        with self._lock:
            pending = self._pending
        return pending[2] if pending is not None and pending[2] is not None else self.zone_document

    def process(self, frame: Frame, detections: Detections) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.engine = self._install(pending[0])
            self.zone_version = pending[1]
            self.zone_document = pending[2]  # None: zones without their text (tests)
            if pending[2] is not None:
                self.parts.on_zones(self.camera_id, pending[2])
            log.info("camera %s: zones of config version %s in use", self.camera_id, pending[1])
        self.parts.metrics.frames_analysed.labels(camera=self.camera_id).inc()
        self.analysed.mark(self.parts.monotonic())
        self._recent.append((frame.ts, detections))
        self.latest = LatestView(frame, detections, self.parts.monotonic())
        if self.scene is not None and self.uses_scene:
            self.scene.see_people(detections, frame.resolution_wh)
            if not self.scene_fed_by_capture:
                self.scene.offer(frame.pixels, frame.ts)
            elif not self.live:  # a file faster than real time: regions of this moment, not earlier
                self.scene.wait_for(frame.ts, SCENE_WAIT_S)
            detections = self.scene.merge(frame, detections)
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
        main = self.main_stream
        if main is not NO_MAIN_STREAM and self.engine.evidence_due(frame.ts, main.max_age_s):
            main.prepare()
        if events:
            self._count(events)
            self.parts.notify()

    def _install(self, zone_file: ZoneFile) -> IncidentEngine:
        self.zone_file = zone_file
        self._membership = None
        self.uses_scene = used_by(zone_file)
        if self.scene is not None:
            self.scene.goods = goods_classes(zone_file)
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
        evidence = self._evidence(event)
        if evidence is None:
            return incident_message(event, self.parts.node_id, shop, None, zones=self.zone_document)
        jpeg, before_now = evidence.annotated_jpeg, evidence.before_now_jpeg
        return incident_message(
            event, self.parts.node_id, shop, jpeg, before_now, evidence.objects, zones=self.zone_document
        )

    def _evidence(self, event: IncidentEvent) -> Evidence | None:
        frame = event.evidence_frame
        if frame is None:
            return None
        zone = next((z for z in self.zone_file.zones if z.id == event.zone_id), None)
        view = self._view(event, frame)
        pixels = view.pixels
        reference = self.scene.snapshot().background if self.scene is not None and self.uses_scene else None
        faces = self.parts.faces
        if self.parts.blur_outside_zones:
            monitored = [z.polygon for z in self.zone_file.zones if z.kind is ZoneKind.MONITORED]
            pixels = blur_outside(pixels, monitored)
            if reference is not None:
                reference = blur_outside(reference, monitored)
        rendered = render_evidence(
            pixels,
            zone_polygon=zone.polygon if zone is not None else (),
            objects=view.objects,
            detections=view.detections,
            camera_id=self.camera_id,
            incident_id=event.incident_id,
            local_time=event.utc.astimezone(self.zone_file.tz),
            policy=EVIDENCE,
            faces=faces_at(faces, view.pixels, view.pixels.shape),
            reference=reference,
            reference_faces=faces_at(faces, reference, view.pixels.shape),
        )
        return rendered

    def _view(self, event: IncidentEvent, frame: Frame) -> EvidenceView:
        """The main stream's picture when a fresh one is there, else the analysed frame.

        A live camera never waits for it; a recording replayed faster than real time does, as
        the picture would have been grabbed during the dwell at real-time speed.
        """
        detections = self._detections_of(frame)
        still = self.main_stream.take(wait_s=0.0 if self.live else REPLAY_MAIN_STREAM_WAIT_S)
        if still is None:
            return EvidenceView(frame.pixels, event.objects, detections)
        h, w = still.shape[:2]
        objects = tuple(
            replace(o, xyxy=(o.bbox[0] * w, o.bbox[1] * h, o.bbox[2] * w, o.bbox[3] * h))
            for o in event.objects
        )
        found = self.parts.detector.detect(still, self.parts.conf_threshold)
        return EvidenceView(still, objects, _people_of(detections, frame.resolution_wh, found, (w, h)))

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


def _people_of(
    earlier: Detections, earlier_wh: tuple[int, int], found: Detections, resolution_wh: tuple[int, int]
) -> Detections:
    """The people to blur in a picture: those `found` in it, and those of the analysed frame scaled
    to it (the picture was taken a moment later; whoever was in either is blurred)."""
    people = earlier[earlier.class_mask(PEOPLE_CLASSES)]
    (w, h), (fw, fh) = resolution_wh, earlier_wh
    scale = np.array([w / fw, h / fh, w / fw, h / fh], np.float32)
    names = found.class_names + tuple(sorted(set(people.labels) - set(found.class_names)))
    ids = [names.index(label) for label in people.labels]
    return Detections(
        np.concatenate([found.xyxy, people.xyxy * scale]),
        np.concatenate([found.confidence, people.confidence]),
        np.concatenate([found.class_id, np.array(ids, np.int64)]),
        names,
    )
