"""incident/3's evidence_objects: stored with the picture they describe, never with another one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from tests.support.database import review_db_for
from tests.uplink.helpers import CAMERA, NODE, incident
from uplink.database import Database
from uplink.ingest import Ingest, OutcomeKind
from uplink.messages import DetectedObject, Evidence, IncidentEventKind, to_json
from uplink.review_db import open_review_database
from uplink.topics import Topics

TOPIC = Topics().incident(NODE, CAMERA)
OPENED, UPDATED = IncidentEventKind.OPENED, IncidentEventKind.UPDATED
BICYCLE = DetectedObject(label="bicycle", confidence=0.34, bbox=(0.1, 0.5, 0.3, 0.9))
CHAIR = DetectedObject(label="chair", confidence=0.81, bbox=(0.4, 0.5, 0.6, 0.8))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_review_database(review_db_for(tmp_path))


@pytest.fixture
def ingest(db: Database, tmp_path: Path) -> Ingest:
    return Ingest(db, tmp_path / "evidence")


def picture(seed: int) -> Evidence:
    ok, data = cv2.imencode(".jpg", np.full((24, 32, 3), 40 + seed, np.uint8))
    assert ok
    return Evidence.from_jpeg(data.tobytes())


def stored(db: Database, iid: uuid.UUID) -> tuple[str | None, list[dict[str, Any]] | None]:
    path, objects = db.execute(
        "SELECT evidence_path, evidence_objects FROM incidents WHERE incident_id = ?", [str(iid)]
    ).fetchone()
    return path, None if objects is None else json.loads(objects)


def as_json(*objects: DetectedObject) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in objects]


def test_the_objects_follow_their_picture(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    opened = incident(iid, 0, OPENED, evidence=picture(0), evidence_objects=[CHAIR, BICYCLE])
    assert ingest.handle(TOPIC, to_json(opened)).kind is OutcomeKind.STORED
    assert stored(db, iid) == (f"{iid}/0.jpg", as_json(CHAIR, BICYCLE))
    # An update without a picture leaves picture and objects as they were.
    assert ingest.handle(TOPIC, to_json(incident(iid, 1, UPDATED))).kind is OutcomeKind.STORED
    assert stored(db, iid) == (f"{iid}/0.jpg", as_json(CHAIR, BICYCLE))
    # A new picture brings its own objects (tag 1 is now the bicycle).
    newer = incident(iid, 2, UPDATED, evidence=picture(2), evidence_objects=[BICYCLE])
    ingest.handle(TOPIC, to_json(newer))
    assert stored(db, iid) == (f"{iid}/2.jpg", as_json(BICYCLE))
    # A re-sent event with other objects changes nothing: (incident_id, seq) is stored once.
    resent = incident(iid, 1, UPDATED, evidence=picture(1), evidence_objects=[CHAIR])
    assert ingest.handle(TOPIC, to_json(resent)).kind is OutcomeKind.DUPLICATE
    assert stored(db, iid) == (f"{iid}/2.jpg", as_json(BICYCLE))


def test_a_late_picture_fills_in_only_when_there_was_none(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    ingest.handle(TOPIC, to_json(incident(iid, 1, UPDATED)))
    late = incident(iid, 0, OPENED, evidence=picture(0), evidence_objects=[CHAIR])
    assert ingest.handle(TOPIC, to_json(late)).kind is OutcomeKind.LATE
    assert stored(db, iid) == (f"{iid}/0.jpg", as_json(CHAIR))


def test_a_picture_without_objects_forgets_the_old_ones(ingest: Ingest, db: Database) -> None:
    """A node still on /2 sends pictures without numbers: the old numbers would name wrong boxes."""
    iid = uuid.uuid4()
    ingest.handle(TOPIC, to_json(incident(iid, 0, OPENED, evidence=picture(0), evidence_objects=[CHAIR])))
    v2 = json.loads(to_json(incident(iid, 1, UPDATED, evidence=picture(1))))
    v2["schema"] = "curbwatch.incident/2"
    assert ingest.handle(TOPIC, json.dumps(v2).encode()).kind is OutcomeKind.STORED
    assert stored(db, iid) == (f"{iid}/1.jpg", None)


@pytest.mark.parametrize("schema", ["curbwatch.incident/1", "curbwatch.incident/2"])
def test_old_messages_still_ingest_and_may_not_carry_objects(
    ingest: Ingest, db: Database, schema: str
) -> None:
    iid = uuid.uuid4()
    old = json.loads(to_json(incident(iid, 0, OPENED, evidence=picture(0))))
    old["schema"] = schema
    assert ingest.handle(TOPIC, json.dumps(old).encode()).kind is OutcomeKind.STORED
    assert stored(db, iid) == (f"{iid}/0.jpg", None)
    old["seq"] = 1
    old["evidence_objects"] = as_json(CHAIR)
    outcome = ingest.handle(TOPIC, json.dumps(old).encode())
    assert outcome.kind is OutcomeKind.DEAD_LETTER and "evidence_objects" in (outcome.reason or "")


def test_objects_without_a_picture_are_refused_with_the_reason(ingest: Ingest) -> None:
    with pytest.raises(ValidationError, match="they need `evidence`"):
        incident(uuid.uuid4(), 0, OPENED, evidence_objects=[CHAIR])
    body = json.loads(to_json(incident(uuid.uuid4(), 0, OPENED)))
    body["evidence_objects"] = as_json(CHAIR)
    outcome = ingest.handle(TOPIC, json.dumps(body).encode())
    assert outcome.kind is OutcomeKind.DEAD_LETTER and "they need `evidence`" in (outcome.reason or "")


def test_the_event_payload_keeps_the_objects(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    ingest.handle(TOPIC, to_json(incident(iid, 0, OPENED, evidence=picture(0), evidence_objects=[BICYCLE])))
    payload = json.loads(db.execute("SELECT payload FROM incident_events").fetchone()[0])
    assert payload["evidence_objects"] == as_json(BICYCLE) and "evidence" not in payload
