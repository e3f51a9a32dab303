"""An incident with real evidence: leuvenB.jpg (bicycles on a sidewalk) through render_evidence."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2

from edge.evidence.render import Evidence, render_evidence
from models.classes import COCO_CLASSES
from models.types import Detections
from tests.review_ui.support import incident_message
from uplink.messages import DetectedObject, IncidentMessage
from uplink.messages import Evidence as WireEvidence

LEUVEN_WH = (751, 563)


@dataclass(frozen=True)
class Seen:
    label: str
    confidence: float
    xyxy: tuple[float, float, float, float]
    tracker_id: int | None


# The two parked bicycles (one seen twice by its track) and a stone block taken for a chair.
SEEN = (
    Seen("bicycle", 0.34, (136.0, 404.0, 200.0, 474.0), 1),
    Seen("bicycle", 0.62, (198.0, 406.0, 264.0, 462.0), 2),
    Seen("bicycle", 0.30, (139.0, 406.0, 199.0, 471.0), 1),
    Seen("chair", 0.45, (600.0, 392.0, 672.0, 444.0), 3),
)


def render_leuven(photo: Path) -> Evidence:
    pixels = cv2.imread(str(photo))
    assert pixels is not None and (pixels.shape[1], pixels.shape[0]) == LEUVEN_WH
    return render_evidence(
        pixels,
        zone_polygon=[(0.1, 0.68), (0.95, 0.68), (0.95, 0.95), (0.1, 0.95)],
        objects=SEEN,
        detections=Detections.empty(COCO_CLASSES),
        camera_id="cam-01",
        incident_id=str(uuid.uuid4()),
        local_time=datetime(2026, 5, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
    )


def leuven_incident(photo: Path, **overrides: Any) -> IncidentMessage:
    """An opened incident whose evidence and evidence_objects come from the edge's renderer."""
    evidence = render_leuven(photo)
    drawn = [DetectedObject(label=o.label, confidence=o.confidence, bbox=o.bbox) for o in evidence.objects]
    base = incident_message(label="bicycle", confidence=0.62, **overrides)
    return IncidentMessage.model_validate(
        {**dict(base), "evidence": WireEvidence.from_jpeg(evidence.annotated_jpeg), "evidence_objects": drawn}
    )
