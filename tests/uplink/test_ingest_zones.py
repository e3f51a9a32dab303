"""The ingest of curbwatch.zones/1 (the zone document a camera runs) and incident/3's zones."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.database import review_db_for
from tests.uplink.helpers import CAMERA, NODE, T0, incident
from uplink.database import Database
from uplink.ingest import Ingest, OutcomeKind
from uplink.messages import IncidentEventKind, ZoneSource, ZonesReport, to_json
from uplink.review_db import open_review_database
from uplink.topics import Topics

T = Topics()
DOCUMENT = "camera_id: cam-01\nzones: []  # 东侧人行道\n"
SHA = hashlib.sha256(DOCUMENT.encode("utf-8")).hexdigest()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_review_database(review_db_for(tmp_path))


@pytest.fixture
def ingest(db: Database, tmp_path: Path) -> Ingest:
    return Ingest(db, tmp_path / "evidence")


def report(**changes: Any) -> ZonesReport:
    fields: dict[str, Any] = {
        "node_id": NODE,
        "camera_id": CAMERA,
        "at": T0,
        "sha256": SHA,
        "source": ZoneSource.FILE,
        "path": "/etc/curbwatch/zones/demo.yaml",
        "document": DOCUMENT,
    }
    return ZonesReport(**{**fields, **changes})


def stored_reports(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT * FROM zone_reports ORDER BY at")]


def test_a_report_is_stored_by_its_hash_and_marks_what_the_camera_runs(ingest: Ingest, db: Database) -> None:
    outcome = ingest.handle(T.camera_zones(NODE, CAMERA), to_json(report()))
    assert outcome.kind is OutcomeKind.UPDATED, outcome.reason
    [row] = stored_reports(db)
    assert row["document"] == DOCUMENT and row["source"] == "file"
    assert row["path"] == "/etc/curbwatch/zones/demo.yaml" and row["config_version"] is None
    camera = db.execute("SELECT zones_sha256 FROM cameras WHERE camera_id = ?", [CAMERA]).fetchone()
    assert camera[0] == SHA


def test_a_report_without_the_text_keeps_the_text_already_known(ingest: Ingest, db: Database) -> None:
    ingest.handle(T.camera_zones(NODE, CAMERA), to_json(report()))
    ingest.handle(T.camera_zones(NODE, CAMERA), to_json(report(document=None)))
    assert [r["document"] for r in stored_reports(db)] == [DOCUMENT]


def test_a_newer_document_becomes_the_running_one_and_the_old_stays_for_old_incidents(
    ingest: Ingest, db: Database
) -> None:
    newer = "camera_id: cam-01\nzones: []\n"
    newer_sha = hashlib.sha256(newer.encode()).hexdigest()
    ingest.handle(T.camera_zones(NODE, CAMERA), to_json(report()))
    config = report(sha256=newer_sha, document=newer, source=ZoneSource.CONFIG, path=None, config_version=3)
    ingest.handle(T.camera_zones(NODE, CAMERA), to_json(config))
    assert {r["sha256"] for r in stored_reports(db)} == {SHA, newer_sha}
    camera = db.execute("SELECT zones_sha256 FROM cameras WHERE camera_id = ?", [CAMERA]).fetchone()
    assert camera[0] == newer_sha


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"camera_id": "cam-02"}, "does not match"),
        ({"sha256": "0" * 64}, "sha256 mismatch"),
        ({"source": "config", "path": None}, "needs `config_version`"),
        ({"source": "file", "path": None}, "needs `path`"),
        ({"extra": 1}, "Extra inputs"),
    ],
)
def test_bad_reports_are_dead_lettered_with_a_reason(
    ingest: Ingest, db: Database, payload: dict[str, Any], reason: str
) -> None:
    document = json.loads(to_json(report()))
    document.update(payload)
    document = {k: v for k, v in document.items() if v is not None}
    outcome = ingest.handle(T.camera_zones(NODE, CAMERA), json.dumps(document).encode())
    assert outcome.kind is OutcomeKind.DEAD_LETTER
    assert reason in (outcome.reason or "")
    assert stored_reports(db) == []


def test_an_incident_keeps_the_zones_it_was_raised_under(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    opened = incident(iid, 0, IncidentEventKind.OPENED, zones_sha256=SHA, zones_config_version=4)
    assert ingest.handle(T.incident(NODE, CAMERA), to_json(opened)).kind is OutcomeKind.STORED
    later = incident(iid, 1, zones_sha256="1" * 64, zones_config_version=5)
    assert ingest.handle(T.incident(NODE, CAMERA), to_json(later)).kind is OutcomeKind.STORED
    row = db.execute(
        "SELECT zones_sha256, zones_config_version FROM incidents WHERE incident_id = ?", [str(iid)]
    ).fetchone()
    assert tuple(row) == (SHA, 4)


def test_an_incident_2_without_zones_still_ingests(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    old = json.loads(to_json(incident(iid, 0, IncidentEventKind.OPENED)))
    old["schema"] = "curbwatch.incident/2"
    assert ingest.handle(T.incident(NODE, CAMERA), json.dumps(old).encode()).kind is OutcomeKind.STORED
    old["zones_sha256"], old["seq"] = SHA, 1  # /2 does not have the field
    assert ingest.handle(T.incident(NODE, CAMERA), json.dumps(old).encode()).kind is OutcomeKind.DEAD_LETTER
    row = db.execute("SELECT zones_sha256 FROM incidents WHERE incident_id = ?", [str(iid)]).fetchone()
    assert row[0] is None
