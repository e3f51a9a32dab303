"""Offline analysis: detector (+ scene model) -> tracker -> zones -> incidents over a recorded video.

The same stages as the edge node, run in video time as fast as the CPU allows.
`AnalyzePipeline.process` handles one frame and accounts where the time goes;
`event_record` is the JSON Lines contract of `curbwatch analyze`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from edge.evidence.faces import FaceFinder, faces_at
from edge.incidents.engine import IncidentEngine
from edge.incidents.persistence import IncidentStoreLike
from edge.incidents.types import IncidentEvent, IncidentEventKind, StreamStart
from edge.scene.static_objects import StaticObjects
from edge.track import Tracker, TrackerConfig
from models.detector import Detector
from models.types import Frame
from zones.membership import ZoneMembership
from zones.schema import ZoneFile

# Detect below the zones' min_confidence so the tracker's second stage has weak boxes
# to keep a half-occluded object's track alive.
DETECT_CONFIDENCE = 0.15
ANALYZE_TRACKER = TrackerConfig(high_confidence=0.3, low_confidence=DETECT_CONFIDENCE)


@dataclass
class StageTimes:
    """Seconds spent per stage (mutable accumulator owned by one pipeline)."""

    decode_s: float = 0.0
    detect_s: float = 0.0  # the detector and the scene model
    logic_s: float = 0.0  # tracking + zones + incidents
    frames: int = 0

    @property
    def total_s(self) -> float:
        return self.decode_s + self.detect_s + self.logic_s


class EvidenceWriter(Protocol):
    def __call__(self, event: IncidentEvent) -> Path | None: ...


@dataclass
class AnalyzePipeline:
    """One camera's stages, built from a detector and a zone file."""

    detector: Detector
    zone_file: ZoneFile
    start_utc: datetime
    camera_id: str = ""
    tracker_config: TrackerConfig = ANALYZE_TRACKER
    store: IncidentStoreLike | None = None
    id_factory: Callable[[], uuid.UUID | str] = uuid.uuid4
    times: StageTimes = field(default_factory=StageTimes)
    scene: StaticObjects | None = None  # the class-agnostic eye; None: detector rows only

    def __post_init__(self) -> None:
        self.camera_id = self.camera_id or self.zone_file.camera_id
        self.wall_time = StreamStart(self.start_utc)
        self.tracker = Tracker(self.tracker_config)
        self.engine = IncidentEngine(
            self.zone_file, self.camera_id, self.store, self.id_factory, wall_time=self.wall_time
        )
        self._membership: ZoneMembership | None = None

    def process(self, frame: Frame) -> list[IncidentEvent]:
        started = time.perf_counter()
        detections = self.detector.detect(frame.pixels, DETECT_CONFIDENCE)
        if self.scene is not None:
            self.scene.observe(frame, detections)
            detections = self.scene.merge(frame, detections)
        detected = time.perf_counter()
        if self._membership is None or self._membership.resolution_wh != frame.resolution_wh:
            self._membership = ZoneMembership(self.zone_file, frame.resolution_wh)
        tracked = self.tracker.update(detections, frame.ts)
        checks = self._membership.evaluate(tracked.detections, self.wall_time(frame.ts))
        events = self.engine.step(frame, tracked, checks)
        done = time.perf_counter()
        self.times.detect_s += detected - started
        self.times.logic_s += done - detected
        self.times.frames += 1
        return events

    def run(self, frames: Iterable[Frame]) -> Iterator[IncidentEvent]:
        """Events of every frame, decode time accounted to `times.decode_s`."""
        iterator = iter(frames)
        while True:
            started = time.perf_counter()
            frame = next(iterator, None)
            self.times.decode_s += time.perf_counter() - started
            if frame is None:
                return
            yield from self.process(frame)


def event_record(event: IncidentEvent, evidence: Path | None = None) -> dict[str, object]:
    """The JSON object of one event line (ARCHITECTURE.md's analyze contract, plus extras)."""
    primary = event.primary
    record: dict[str, object] = {
        "event": event.event.value,
        "incident_id": event.incident_id,
        "camera_id": event.camera_id,
        "zone_id": event.zone_id,
        "t": round(event.t, 3),
        "label": primary.label if primary else None,
        "bbox": [round(v, 4) for v in primary.bbox] if primary else None,
        "confidence": primary.confidence if primary else None,
        "seq": event.seq,
        "shop_id": event.shop_id,
        "shop_name": event.shop_name,
        "first_seen_t": round(event.first_seen_t, 3),
        "utc": event.utc.isoformat(),
        "objects": [
            {
                "label": o.label,
                "confidence": o.confidence,
                "bbox": [round(v, 4) for v in o.bbox],
                "tracker_id": o.tracker_id,
            }
            for o in event.objects
        ],
    }
    if event.event is IncidentEventKind.CLEARED and event.reason is not None:
        record["reason"] = event.reason.value
    if evidence is not None:
        record["evidence"] = str(evidence)
    return record


def write_evidence(
    event: IncidentEvent,
    zone_file: ZoneFile,
    detector: Detector,
    directory: Path,
    scene: StaticObjects | None = None,
    faces: FaceFinder | None = None,
) -> Path | None:
    """An annotated JPEG of an opened incident, people and faces blurred (edge.evidence.render).

    With a scene model, the clean background gives the BEFORE / NOW strip under the picture.
    """
    from edge.evidence.render import render_evidence

    if event.event is not IncidentEventKind.OPENED or event.evidence_frame is None:
        return None
    zone = next(z for z in zone_file.zones if z.id == event.zone_id)
    pixels = event.evidence_frame.pixels
    # The people of the evidence frame are found again to blur them: one detection per incident.
    detections = detector.detect(pixels)
    reference = scene.snapshot().background if scene is not None else None
    evidence = render_evidence(
        pixels,
        zone_polygon=zone.polygon,
        objects=event.objects,
        detections=detections,
        camera_id=event.camera_id,
        incident_id=event.incident_id,
        local_time=event.utc.astimezone(zone_file.tz),
        faces=faces_at(faces, pixels, pixels.shape),
        reference=reference,
        reference_faces=faces_at(faces, reference, pixels.shape),
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{event.incident_id}.jpg"
    path.write_bytes(evidence.annotated_jpeg)
    if evidence.before_now_jpeg is not None:
        (directory / f"{event.incident_id}-before-now.jpg").write_bytes(evidence.before_now_jpeg)
    return path
