"""A verdict export made from real footage through the real paths.

Frames of vtest.avi (a plaza: a parked truck and car, people walking) and leuvenB.jpg (bicycles
on a sidewalk) go through the bundled NanoDet, the edge's evidence renderer (people blurred,
numbered boxes burnt in), the uplink ingest, the reviewer's verdicts and the review server's
exporter, as in production. Four camera-days, so a held-out split by camera and day exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from edge.evidence.render import render_evidence
from models.config import load_detector
from models.detector import Detector
from models.types import Image
from review_ui.clock import ManualClock
from review_ui.exports import VerdictExporter
from review_ui.review import RejectReason, Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.support import incident_message
from uplink.messages import DetectedObject, IncidentMessage
from uplink.messages import Evidence as WireEvidence

MIN_OBJECT_CONF = 0.35
# NanoDet sees the plaza's parked truck and car and leuvenB's bicycles (confirmed), and takes
# marks on the plaza's pavement for birds, dogs and balls (rejected: wrong object).
PARKED = frozenset({"truck", "car", "bicycle"})
PAVEMENT = frozenset({"bird", "dog", "sports ball"})
WHOLE_FRAME = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


@dataclass(frozen=True)
class Seen:
    label: str
    confidence: float
    xyxy: tuple[float, float, float, float]


@dataclass(frozen=True)
class Sent:
    """What the test sent, to check the export and the dataset against."""

    incident_id: str
    camera: str
    day: str
    verdict: Verdict
    labels: tuple[str, ...]  # of the objects drawn in the picture


def _frame(video: Path, index: int) -> Image:
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, pixels = capture.read()
    capture.release()
    assert ok, f"{video}: no frame {index}"
    return np.asarray(pixels, np.uint8)


def _objects(detector: Detector, pixels: Image, labels: frozenset[str]) -> tuple[Seen, ...]:
    """What the detector finds of those labels: the objects of the incident."""
    found = detector.detect(pixels)
    return tuple(
        Seen(label, float(conf), (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
        for label, conf, b in zip(found.labels, found.confidence, found.xyxy, strict=True)
        if label in labels and conf >= MIN_OBJECT_CONF
    )


def _message(
    detector: Detector, pixels: Image, camera: str, seen_at: datetime, labels: frozenset[str]
) -> tuple[IncidentMessage, tuple[str, ...]]:
    objects = _objects(detector, pixels, labels)
    assert objects, f"no {sorted(labels)} found on {camera} at {seen_at}"
    incident_id = uuid.uuid4()
    evidence = render_evidence(
        pixels,
        zone_polygon=WHOLE_FRAME,
        objects=objects,
        detections=detector.detect(pixels),  # its people are blurred, as on the edge
        camera_id=camera,
        incident_id=str(incident_id),
        local_time=seen_at.astimezone(ZoneInfo("Asia/Shanghai")),
    )
    drawn = [DetectedObject(label=o.label, confidence=o.confidence, bbox=o.bbox) for o in evidence.objects]
    base = incident_message(
        incident_id,
        camera_id=camera,
        label=drawn[0].label,
        confidence=drawn[0].confidence,
        bbox=drawn[0].bbox,
        first_seen_at=seen_at,
        at=seen_at + timedelta(seconds=60),
        evidence=False,
    )
    message = IncidentMessage.model_validate(
        {**dict(base), "evidence": WireEvidence.from_jpeg(evidence.annotated_jpeg), "evidence_objects": drawn}
    )
    return message, tuple(o.label for o in drawn)


def make_verdict_export(folder: Path, vtest_avi: Path, leuven_jpg: Path) -> tuple[Path, list[Sent]]:
    """The ZIP `curbwatch review export-verdicts` would write, and what went into it."""
    day1 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    leuven = cv2.imread(str(leuven_jpg))
    assert leuven is not None
    pictures = [
        ("cam-plaza", day1, _frame(vtest_avi, 0), Verdict.CONFIRMED, PARKED),
        ("cam-plaza", day1 + timedelta(hours=2), _frame(vtest_avi, 200), Verdict.REJECTED, PAVEMENT),
        ("cam-plaza", day2, _frame(vtest_avi, 400), Verdict.CONFIRMED, PARKED),
        ("cam-plaza", day2 + timedelta(hours=2), _frame(vtest_avi, 500), Verdict.REJECTED, PAVEMENT),
        ("cam-street", day1, np.asarray(leuven, np.uint8), Verdict.CONFIRMED, PARKED),
        # The same street mirrored, a day later: the bicycles there are in a permitted rack.
        ("cam-street", day2, np.ascontiguousarray(leuven[:, ::-1]), Verdict.REJECTED, PARKED),
    ]
    clock = ManualClock(day1)
    server = ReviewServer(make_config(folder), clock=clock)
    feed = Feed(server.config)
    detector = load_detector(None)
    sent = []
    try:
        for camera, seen_at, pixels, verdict, kinds in pictures:
            message, labels = _message(detector, pixels, camera, seen_at, kinds)
            incident_id = feed.send(message)
            clock._now = seen_at + timedelta(minutes=5)
            reason = (
                (RejectReason.WRONG_OBJECT if kinds is PAVEMENT else RejectReason.PERMITTED)
                if verdict is Verdict.REJECTED
                else None
            )
            server.context.reviewer.give_verdict(incident_id, verdict, reason, "", "inspector")
            sent.append(Sent(incident_id, camera, seen_at.date().isoformat(), verdict, labels))
        out = folder / "verdicts.zip"
        with out.open("wb") as handle:
            VerdictExporter(server.store, clock, server.config.evidence_dir).write(handle, "", "test")
    finally:
        feed.db.close()
        server.store.close()
    return out, sent
