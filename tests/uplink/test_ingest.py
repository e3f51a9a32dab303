"""The ingest rules, without a broker: dedup, forward-only state, dead letters, files."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.database import columns, one_row, primary_key, review_db_for
from tests.uplink.helpers import CAMERA, NODE, T0, incident
from uplink.database import Database
from uplink.ingest import Ingest, OutcomeKind
from uplink.messages import (
    CameraHealth,
    CameraState,
    CameraStatus,
    CameraStatusV1,
    ConfigHealth,
    Evidence,
    IncidentEventKind,
    NodeHealth,
    NodeHealthV1,
    RuntimeHealth,
    SceneView,
    to_json,
)
from uplink.review_db import open_review_database
from uplink.topics import Topics

T = Topics()
INCIDENT_TOPIC = T.incident(NODE, CAMERA)
OPENED, UPDATED, CLEARED = IncidentEventKind.OPENED, IncidentEventKind.UPDATED, IncidentEventKind.CLEARED


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_review_database(review_db_for(tmp_path))


@pytest.fixture
def ingest(db: Database, tmp_path: Path) -> Ingest:
    return Ingest(db, tmp_path / "evidence", max_payload_bytes=64 * 1024)


def row(db: Database, incident_id: uuid.UUID) -> dict[str, Any]:
    return one_row(db, "incidents", incident_id=str(incident_id))


def seqs(db: Database, incident_id: uuid.UUID) -> list[int]:
    return [
        r[0]
        for r in db.execute(
            "SELECT seq FROM incident_events WHERE incident_id = ? ORDER BY seq", [str(incident_id)]
        )
    ]


def test_lifecycle_in_order(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    for seq, event in enumerate([OPENED, UPDATED, CLEARED]):
        assert ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, seq, event))).kind is OutcomeKind.STORED
    stored = row(db, iid)
    assert stored["state"] == "cleared" and stored["last_seq"] == 2
    assert stored["opened_at"] == "2026-05-01T02:01:00.000000Z"
    assert stored["cleared_at"] == "2026-05-01T02:02:00.000000Z"
    assert stored["first_seen_at"] == "2026-05-01T02:00:00.000000Z"
    assert json.loads(stored["bbox"]) == [0.1, 0.5, 0.3, 0.9]
    assert (stored["shop_id"], stored["shop_name"], stored["zone_id"]) == (
        "shop-12",
        "东街12号",
        "door-12-sidewalk",
    )
    assert seqs(db, iid) == [0, 1, 2]


def test_replayed_event_is_stored_once(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    payload = to_json(incident(iid, 0, OPENED))
    assert ingest.handle(INCIDENT_TOPIC, payload).kind is OutcomeKind.STORED
    assert ingest.handle(INCIDENT_TOPIC, payload).kind is OutcomeKind.DUPLICATE
    assert seqs(db, iid) == [0]
    assert db.execute("SELECT count(*) FROM incidents").fetchone()[0] == 1


def test_out_of_order_never_moves_backwards(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    assert (
        ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, 2, CLEARED, label="table"))).kind
        is OutcomeKind.STORED
    )
    late_update = to_json(incident(iid, 1, UPDATED, label="chair"))
    assert ingest.handle(INCIDENT_TOPIC, late_update).kind is OutcomeKind.LATE
    late_open = to_json(incident(iid, 0, OPENED, label="chair"))
    assert ingest.handle(INCIDENT_TOPIC, late_open).kind is OutcomeKind.LATE
    stored = row(db, iid)
    assert stored["state"] == "cleared", "a late 'opened' reopened a cleared incident"
    assert stored["last_seq"] == 2 and stored["label"] == "table"
    assert stored["opened_at"] == "2026-05-01T02:01:00.000000Z", (
        "the late opened still records when it opened"
    )
    assert seqs(db, iid) == [0, 1, 2]


def test_update_after_clear_keeps_cleared(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, 1, CLEARED)))
    ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, 2, UPDATED)))
    assert row(db, iid)["state"] == "cleared" and row(db, iid)["last_seq"] == 2


def test_evidence_is_written_by_seq_and_left_out_of_the_event_payload(
    ingest: Ingest, db: Database, tmp_path: Path
) -> None:
    iid = uuid.uuid4()
    jpeg = real_jpeg(0)
    ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, 0, OPENED, evidence=Evidence.from_jpeg(jpeg))))
    ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, 1, UPDATED)))  # no new evidence: keep the old
    stored = row(db, iid)
    assert stored["evidence_path"] == f"{iid}/0.jpg"
    written = (tmp_path / "evidence" / stored["evidence_path"]).read_bytes()
    assert hashlib.sha256(written).hexdigest() == hashlib.sha256(jpeg).hexdigest()
    payload = json.loads(db.execute("SELECT payload FROM incident_events WHERE seq = 0").fetchone()[0])
    assert "evidence" not in payload and payload["seq"] == 0


def test_before_now_of_incident_2_is_written_beside_the_evidence_and_1_still_reads(
    ingest: Ingest, db: Database, tmp_path: Path
) -> None:
    iid = uuid.uuid4()
    jpeg = real_jpeg(0)
    before_now = real_jpeg(1)
    opened = incident(
        iid, 0, OPENED, evidence=Evidence.from_jpeg(jpeg), before_now=Evidence.from_jpeg(before_now)
    )
    assert ingest.handle(INCIDENT_TOPIC, to_json(opened)).kind is OutcomeKind.STORED
    stored = row(db, iid)
    assert stored["before_now_path"] == f"{iid}/0-before-now.jpg"
    assert (tmp_path / "evidence" / stored["before_now_path"]).read_bytes() == before_now
    payload = json.loads(db.execute("SELECT payload FROM incident_events WHERE seq = 0").fetchone()[0])
    assert "before_now" not in payload and payload["schema"] == "curbwatch.incident/3"
    # A node not upgraded yet sends /1 (no before_now): stored, the picture kept.
    v1 = json.loads(to_json(incident(iid, 1, UPDATED)))
    v1["schema"] = "curbwatch.incident/1"
    assert ingest.handle(INCIDENT_TOPIC, json.dumps(v1).encode()).kind is OutcomeKind.STORED
    assert row(db, iid)["last_seq"] == 1 and row(db, iid)["before_now_path"] == f"{iid}/0-before-now.jpg"
    v1["before_now"] = v1.get("evidence")
    v1["seq"] = 2
    assert ingest.handle(INCIDENT_TOPIC, json.dumps(v1).encode()).kind is OutcomeKind.DEAD_LETTER


def test_node_status_health_camera_and_snapshot(ingest: Ingest, db: Database, tmp_path: Path) -> None:
    assert ingest.handle(T.node_status(NODE), b"online").kind is OutcomeKind.UPDATED
    health = NodeHealth(node_id=NODE, at=T0, uptime_s=5.0, outbox_backlog=3, config_version=7)
    assert ingest.handle(T.node_health(NODE), to_json(health)).kind is OutcomeKind.UPDATED
    node = one_row(db, "nodes", node_id=NODE)
    assert node["status"] == "online" and node["config_version"] == 7
    assert json.loads(node["health"])["outbox_backlog"] == 3
    status = CameraStatus(
        node_id=NODE, camera_id=CAMERA, state=CameraState.RECONNECTING, at=T0, last_frame_at=T0
    )
    assert ingest.handle(T.camera_status(NODE, CAMERA), to_json(status)).kind is OutcomeKind.UPDATED
    jpeg = b"\xff\xd8\xff\xdbsnapshot"
    assert ingest.handle(T.snapshot(NODE, CAMERA), jpeg).kind is OutcomeKind.UPDATED
    camera = one_row(db, "cameras", node_id=NODE, camera_id=CAMERA)
    assert camera["state"] == "reconnecting" and camera["last_frame_at"] == "2026-05-01T02:00:00.000000Z"
    assert (tmp_path / "evidence" / camera["snapshot_path"]).read_bytes() == jpeg
    assert ingest.handle(T.node_status(NODE), b"offline").kind is OutcomeKind.UPDATED
    assert one_row(db, "nodes", node_id=NODE)["config_version"] == 7, "a status must not erase health"


def test_health_of_every_version_is_stored_as_received(ingest: Ingest, db: Database) -> None:
    """Nodes not yet upgraded send /1, /2 or /3; current ones /4 with their runtime (docs/mqtt.md)."""
    old = NodeHealthV1(node_id=NODE, at=T0, uptime_s=5.0, outbox_backlog=0, config_version=3)
    assert ingest.handle(T.node_health(NODE), to_json(old)).kind is OutcomeKind.UPDATED
    assert one_row(db, "nodes", node_id=NODE)["config_version"] == 3
    new = NodeHealth(
        node_id=NODE,
        at=T0,
        uptime_s=35.0,
        outbox_backlog=0,
        config_version=4,
        cameras=[
            CameraHealth(
                camera_id=CAMERA,
                state=CameraState.STREAMING,
                last_frame_at=T0,
                fps_analysed=1.0,
                incidents_open=2,
                view=SceneView.OBSTRUCTED,
                static_regions=0,
                relearns=1,
                scene_ms=4.0,
                decode_share=0.04,
            )
        ],
        runtime=RuntimeHealth(
            detector_threads=2, detector_workers=1, capture_threads=1, detect_ms_mean=20.0, detect_ms_p95=25.0
        ),
        config=ConfigHealth(
            applied_version=4,
            rejected_version=5,
            rejected_at=T0,
            problems=["config v5 cameras[cam-01]:3: zones: bad"],
        ),
    )
    assert ingest.handle(T.node_health(NODE), to_json(new)).kind is OutcomeKind.UPDATED
    node = one_row(db, "nodes", node_id=NODE)
    assert node["config_version"] == 4
    stored = json.loads(node["health"])
    assert stored["schema"] == "curbwatch.health/4" and stored["cameras"][0]["incidents_open"] == 2
    assert stored["cameras"][0]["view"] == "obstructed" and stored["runtime"]["detect_ms_p95"] == 25.0
    assert stored["config"]["problems"] == ["config v5 cameras[cam-01]:3: zones: bad"]
    v3 = new.model_dump(by_alias=True, mode="json", exclude_none=True)
    v3["schema"] = "curbwatch.health/3"
    del v3["runtime"], v3["cameras"][0]["decode_share"]
    assert ingest.handle(T.node_health(NODE), json.dumps(v3).encode()).kind is OutcomeKind.UPDATED
    assert json.loads(one_row(db, "nodes", node_id=NODE)["health"])["schema"] == "curbwatch.health/3"
    v2 = dict(v3, schema="curbwatch.health/2", cameras=[dict(v3["cameras"][0])])
    for scene_field in ("view", "static_regions", "relearns", "scene_ms"):
        del v2["cameras"][0][scene_field]
    assert ingest.handle(T.node_health(NODE), json.dumps(v2).encode()).kind is OutcomeKind.UPDATED
    assert json.loads(one_row(db, "nodes", node_id=NODE)["health"])["schema"] == "curbwatch.health/2"


def test_camera_status_of_both_versions_sets_state_and_view(ingest: Ingest, db: Database) -> None:
    old = CameraStatusV1(node_id=NODE, camera_id=CAMERA, state=CameraState.STREAMING, at=T0)
    assert ingest.handle(T.camera_status(NODE, CAMERA), to_json(old)).kind is OutcomeKind.UPDATED
    row = one_row(db, "cameras", node_id=NODE, camera_id=CAMERA)
    assert (row["state"], row["view"]) == ("streaming", None)
    new = CameraStatus(
        node_id=NODE, camera_id=CAMERA, state=CameraState.STREAMING, at=T0, view=SceneView.OBSTRUCTED
    )
    assert ingest.handle(T.camera_status(NODE, CAMERA), to_json(new)).kind is OutcomeKind.UPDATED
    row = one_row(db, "cameras", node_id=NODE, camera_id=CAMERA)
    assert (row["state"], row["view"]) == ("streaming", "obstructed")


def real_jpeg(seed: int) -> bytes:
    import cv2
    import numpy as np

    ok, data = cv2.imencode(".jpg", np.full((24, 32, 3), 40 + seed, np.uint8))
    assert ok
    return bytes(data.tobytes())


def _good() -> bytes:
    return to_json(incident(uuid.UUID(int=1), 0, OPENED))


# A JPEG header that declares a 65000x65000 frame (SOF0), and nothing after it.
HUGE_JPEG_HEADER = bytes.fromhex("ffd8ffc0001108fde8fde803012200021101031101")


def _with_evidence(data: bytes) -> bytes:
    import base64
    import hashlib

    document = json.loads(_good())
    document["evidence"] = {
        "content_type": "image/jpeg",
        "sha256": hashlib.sha256(data).hexdigest(),
        "data": base64.b64encode(data).decode(),
    }
    return json.dumps(document).encode()


def _edit(**changes: Any) -> bytes:
    document = json.loads(_good())
    document.update(changes)
    return json.dumps(document).encode()


BAD_INPUT = [
    ("truncated JSON", INCIDENT_TOPIC, _good()[:-7], "not JSON"),
    ("not UTF-8", INCIDENT_TOPIC, b"\xff\xfe{}", "not JSON"),
    ("JSON array", INCIDENT_TOPIC, b"[1, 2]", "expected a JSON object"),
    ("wrong types", INCIDENT_TOPIC, _edit(seq="0", confidence="high"), "invalid IncidentMessage: seq"),
    ("missing schema", INCIDENT_TOPIC, _edit(schema=None), "unknown schema"),
    ("unknown schema version", INCIDENT_TOPIC, _edit(schema="curbwatch.incident/9"), "unknown schema"),
    ("huge payload", INCIDENT_TOPIC, b"{" + b" " * (65 * 1024) + b"}", "exceeds the limit"),
    ("node mismatch", T.incident("node-b", CAMERA), _good(), "does not match 'node-b'"),
    ("camera mismatch", T.incident(NODE, "cam-99"), _good(), "does not match 'cam-99'"),
    ("unknown topic", "curbwatch/v1/node-a/cam-01/video", _good(), "not part of the curbwatch contract"),
    ("foreign prefix", "other/node-a/status", b"online", "not under prefix"),
    ("bad node status", T.node_status(NODE), b"maybe", "'online' or 'offline'"),
    (
        "health of another node",
        T.node_health("node-b"),
        to_json(NodeHealth(node_id=NODE, at=T0, uptime_s=1.0, outbox_backlog=0)),
        "does not match",
    ),
    ("snapshot not a JPEG", T.snapshot(NODE, CAMERA), b"\x89PNG\r\n", "not a JPEG"),
    (
        "health /1 with /2 blocks",
        T.node_health(NODE),
        json.dumps(
            {
                "schema": "curbwatch.health/1",
                "node_id": NODE,
                "at": "2026-05-01T02:00:00Z",
                "uptime_s": 1.0,
                "outbox_backlog": 0,
                "cameras": [],
            }
        ).encode(),
        "invalid NodeHealthV1: cameras",
    ),
    (
        "health /3 with the /4 runtime",
        T.node_health(NODE),
        json.dumps(
            {
                "schema": "curbwatch.health/3",
                "node_id": NODE,
                "at": "2026-05-01T02:00:00Z",
                "uptime_s": 1.0,
                "outbox_backlog": 0,
                "runtime": {"detector_threads": 1, "detector_workers": 1, "capture_threads": 0},
            }
        ).encode(),
        "invalid NodeHealthV3: runtime",
    ),
    ("empty incident", INCIDENT_TOPIC, b"", "empty incident payload"),
    ("infinite dwell", INCIDENT_TOPIC, _good().replace(b'"seq":0', b'"seq":0,"dwell_s":Infinity'), "dwell_s"),
    ("seq beyond 64 bits", INCIDENT_TOPIC, _good().replace(b'"seq":0', b'"seq":9223372036854775808'), "seq"),
    ("HTML as evidence", INCIDENT_TOPIC, _with_evidence(b"<html><script>alert(1)</script></html>"), "JPEG"),
    ("empty evidence", INCIDENT_TOPIC, _with_evidence(b""), "JPEG"),
    ("65000 px evidence", INCIDENT_TOPIC, _with_evidence(HUGE_JPEG_HEADER), "65000x65000"),
    ("health /5", T.node_health(NODE), b'{"schema": "curbwatch.health/5"}', "unknown schema"),
    (
        "camera status /3",
        T.camera_status(NODE, CAMERA),
        b'{"schema": "curbwatch.camera-status/3"}',
        "unknown schema",
    ),
    ("health not an object", T.node_health(NODE), b"[]", "expected a JSON object"),
]


@pytest.mark.parametrize(
    ("name", "topic", "payload", "reason"), BAD_INPUT, ids=[case[0] for case in BAD_INPUT]
)
def test_bad_input_is_dead_lettered_with_a_reason(
    ingest: Ingest, db: Database, name: str, topic: str, payload: bytes, reason: str
) -> None:
    outcome = ingest.handle(topic, payload)
    assert outcome.kind is OutcomeKind.DEAD_LETTER, name
    assert outcome.reason is not None and reason in outcome.reason
    letter = dict(next(db.query("SELECT * FROM dead_letters")))
    assert letter["topic"] == topic and reason in letter["reason"]
    assert letter["payload_size"] == len(payload)
    assert bytes(letter["payload"]) == payload[: 64 * 1024]
    assert db.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0


def test_incident_id_of_another_node_is_refused(ingest: Ingest, db: Database) -> None:
    iid = uuid.uuid4()
    ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, 0, OPENED)))
    spoof = incident(iid, 1, UPDATED, node_id="node-b")
    outcome = ingest.handle(T.incident("node-b", CAMERA), to_json(spoof))
    assert outcome.kind is OutcomeKind.DEAD_LETTER and "belongs to node node-a" in (outcome.reason or "")
    assert seqs(db, iid) == [0]


def test_a_bad_message_in_a_batch_does_not_undo_the_good_ones(ingest: Ingest, db: Database) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    outcomes = ingest.handle_batch(
        [
            (INCIDENT_TOPIC, to_json(incident(a, 0, OPENED))),
            (INCIDENT_TOPIC, b"{broken"),
            (INCIDENT_TOPIC, to_json(incident(b, 0, OPENED))),
        ]
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.STORED, OutcomeKind.DEAD_LETTER, OutcomeKind.STORED]
    assert db.execute("SELECT count(*) FROM incidents").fetchone()[0] == 2


def test_on_change_reports_changed_incidents_and_its_errors_are_contained(
    db: Database, tmp_path: Path
) -> None:
    seen: list[uuid.UUID] = []

    def on_change(incident_id: uuid.UUID) -> None:
        seen.append(incident_id)
        raise RuntimeError("the UI's websocket is gone")

    ingest = Ingest(db, tmp_path, on_change=on_change)
    iid = uuid.uuid4()
    payload = to_json(incident(iid, 0, OPENED))
    assert ingest.handle(INCIDENT_TOPIC, payload).kind is OutcomeKind.STORED
    assert ingest.handle(INCIDENT_TOPIC, payload).kind is OutcomeKind.DUPLICATE
    assert seen == [iid]


def test_empty_retained_payload_is_ignored(ingest: Ingest) -> None:
    assert ingest.handle(T.snapshot(NODE, CAMERA), b"").kind is OutcomeKind.IGNORED


def test_schema_is_exactly_what_review_ui_reads(db: Database) -> None:
    found = {
        name: columns(db, name)
        for name in ("incidents", "incident_events", "dead_letters", "nodes", "cameras", "zone_reports")
    }
    assert found == {
        "incidents": [
            "incident_id",
            "node_id",
            "camera_id",
            "zone_id",
            "shop_id",
            "shop_name",
            "label",
            "confidence",
            "bbox",
            "objects",
            "state",
            "first_seen_at",
            "opened_at",
            "updated_at",
            "cleared_at",
            "last_seq",
            "evidence_path",
            "received_at",
            "before_now_path",
            "zones_sha256",
            "zones_config_version",
            "evidence_objects",
        ],
        "incident_events": ["incident_id", "seq", "event", "at", "payload", "received_at"],
        "dead_letters": ["id", "topic", "received_at", "reason", "payload", "payload_size"],
        "nodes": ["node_id", "status", "health", "config_version", "updated_at"],
        "cameras": [
            "node_id",
            "camera_id",
            "state",
            "last_frame_at",
            "snapshot_path",
            "updated_at",
            "view",
            "zones_sha256",
        ],
        "zone_reports": [
            "node_id",
            "camera_id",
            "sha256",
            "source",
            "path",
            "config_version",
            "document",
            "at",
            "received_at",
        ],
    }
    assert primary_key(db, "incident_events") == ["incident_id", "seq"]
    assert primary_key(db, "cameras") == ["node_id", "camera_id"]


def test_a_clear_without_observation_keeps_the_best_one(ingest: Ingest, db: Database) -> None:
    """Issue 11: after a zone edit the cleared event (objects empty, label 'unknown') overwrote
    what the incident was about, and the page showed 'unknown (0.00)'."""
    iid = uuid.uuid4()
    ingest.handle(INCIDENT_TOPIC, to_json(incident(iid, 0, OPENED, label="bicycle")))
    empty = incident(iid, 1, CLEARED, label="unknown", confidence=0.0, bbox=(0.0, 0.0, 0.0, 0.0), objects=[])
    assert ingest.handle(INCIDENT_TOPIC, to_json(empty)).kind is OutcomeKind.STORED
    stored = row(db, iid)
    assert (stored["label"], stored["confidence"], stored["state"], stored["last_seq"]) == (
        "bicycle",
        0.8,
        "cleared",
        1,
    )
