"""The wire contract: committed JSON Schema files, examples, and what the models refuse."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.uplink.helpers import incident
from uplink.messages import (
    CameraStatus,
    CameraStatusV1,
    ConfigMessage,
    Evidence,
    IncidentEventKind,
    IncidentMessage,
    IncidentMessageV1,
    IncidentMessageV2,
    NodeHealth,
    NodeHealthV1,
    NodeHealthV2,
    NodeHealthV3,
    StoredAck,
    WireModel,
    ZonesReport,
    to_json,
)
from uplink.schema_export import MODELS, SCHEMA_DIR, generate

EXAMPLES = SCHEMA_DIR / "examples"
BY_SCHEMA: dict[str, type[WireModel]] = {
    "curbwatch.incident/1": IncidentMessageV1,
    "curbwatch.incident/2": IncidentMessageV2,
    "curbwatch.incident/3": IncidentMessage,
    "curbwatch.config/1": ConfigMessage,
    "curbwatch.health/1": NodeHealthV1,
    "curbwatch.health/2": NodeHealthV2,
    "curbwatch.health/3": NodeHealthV3,
    "curbwatch.health/4": NodeHealth,
    "curbwatch.camera-status/1": CameraStatusV1,
    "curbwatch.camera-status/2": CameraStatus,
    "curbwatch.ack/1": StoredAck,
    "curbwatch.zones/1": ZonesReport,
}


def test_committed_schema_files_equal_generated() -> None:
    generated = generate()
    committed = {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_DIR.glob("*.json")}
    assert committed == generated, "run `python -m uplink.schema_export` and commit uplink/schema/"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_schema_requires_the_version_field_and_forbids_extras(name: str) -> None:
    document = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    assert document["required"][0] == "schema"
    assert document["additionalProperties"] is False
    assert document["properties"]["schema"]["const"] == document["$id"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_examples_validate_and_round_trip(path: Path) -> None:
    raw = path.read_bytes()
    model = BY_SCHEMA[json.loads(raw)["schema"]]
    message = model.model_validate_json(raw)
    assert json.loads(to_json(message)) == json.loads(raw)


def test_example_evidence_is_a_jpeg_with_matching_digest() -> None:
    message = IncidentMessage.model_validate_json((EXAMPLES / "incident-opened.json").read_bytes())
    assert message.evidence is not None and message.before_now is not None
    assert message.evidence.jpeg().startswith(b"\xff\xd8\xff")
    assert message.before_now.jpeg().startswith(b"\xff\xd8\xff")


def test_timestamps_are_serialised_as_utc_with_z() -> None:
    message = incident(uuid.uuid4(), 0, at=datetime(2026, 5, 1, 10, 0, tzinfo=timezone(timedelta(0))))
    assert json.loads(to_json(message))["at"] == "2026-05-01T10:00:00.000000Z"


def _incident_json(**changes: Any) -> bytes:
    document = json.loads(to_json(incident(uuid.uuid4(), 1, IncidentEventKind.UPDATED)))
    for key, value in changes.items():
        if value is _DROP:
            document.pop(key)
        else:
            document[key] = value
    return json.dumps(document).encode()


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"seq": -1}, "greater than or equal to 0"),
        ({"seq": "1"}, "valid integer"),
        ({"confidence": 1.5}, "less than or equal to 1"),
        ({"bbox": [0.5, 0.5, 0.1, 0.9]}, "x1 <= x2"),
        ({"bbox": [0.1, 0.2, 0.3]}, "bbox.3"),
        ({"at": "2026-05-01T10:00:00"}, "must be UTC"),
        ({"at": "2026-05-01T10:00:00+08:00"}, "UTC"),
        ({"event": "reopened"}, "opened"),
        ({"incident_id": "not-a-uuid"}, "UUID"),
        ({"node_id": "a/b"}, "pattern"),
        ({"camera_id": "#"}, "pattern"),
        ({"surprise": 1}, "Extra inputs"),
        ({"label": _DROP}, "Field required"),
        ({"evidence": {"content_type": "image/png", "sha256": "0" * 64, "data": ""}}, "image/jpeg"),
        ({"evidence": {"sha256": "0" * 64, "data": "/9j/"}}, "sha256 mismatch"),
        ({"evidence": {"sha256": "0" * 64, "data": "!!not base64!!"}}, "base64"),
    ],
)
def test_incident_rejects(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        IncidentMessage.model_validate_json(_incident_json(**changes))


def test_evidence_size_is_bounded() -> None:
    too_big = b"\xff\xd8\xff" + bytes(512 * 1024)
    with pytest.raises(ValidationError, match="at most"):
        Evidence.from_jpeg(too_big)


def test_config_requires_version_and_text_documents() -> None:
    good = ConfigMessage(
        node_id="n1", version=1, issued_at=datetime.now(UTC), cameras={"cam-01": "zones: []"}
    )
    assert ConfigMessage.model_validate_json(to_json(good)) == good
    with pytest.raises(ValidationError):
        ConfigMessage.model_validate_json(to_json(good).replace(b'"version":1', b'"version":0'))


def _health_json(**changes: Any) -> bytes:
    document = json.loads((EXAMPLES / "health-2.json").read_bytes())
    document.update(changes)
    return json.dumps(document).encode()


def test_health_2_reads_every_health_1_field_with_the_same_meaning() -> None:
    """/2 is /1 plus optional blocks: a /1 document with the new schema string is a valid /2."""
    old = json.loads((EXAMPLES / "health-1.json").read_bytes())
    v1 = NodeHealthV1.model_validate_json(json.dumps(old))
    v2 = NodeHealthV2.model_validate_json(json.dumps(dict(old, schema="curbwatch.health/2")))
    assert v1.model_dump(exclude={"schema_"}) == v2.model_dump(exclude={"schema_", "cameras", "config"})
    assert (v2.cameras, v2.config) == (None, None)
    v1_schema = json.loads((SCHEMA_DIR / "health-1.json").read_text(encoding="utf-8"))
    v2_schema = json.loads((SCHEMA_DIR / "health-2.json").read_text(encoding="utf-8"))
    assert set(v2_schema["properties"]) - set(v1_schema["properties"]) == {"cameras", "config"}
    assert v2_schema["required"] == v1_schema["required"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"config": {"applied_version": 6}}, "must equal config_version"),
        ({"config": {"applied_version": 7, "rejected_version": 8}}, "need rejected_at"),
        ({"config": {"applied_version": 7, "problems": ["x"]}}, "need rejected_at"),
        (
            {"config": {"applied_version": 7, "rejected_at": "2026-05-01T02:12:30Z", "problems": []}},
            "at least one problem",
        ),
        (
            {
                "config": {
                    "applied_version": 7,
                    "rejected_at": "2026-05-01T02:12:30Z",
                    "problems": [f"p{i}" for i in range(11)],
                }
            },
            "at most 10",
        ),
        (
            {
                "config": {
                    "applied_version": 7,
                    "rejected_at": "2026-05-01T02:12:30Z",
                    "problems": ["x" * 501],
                }
            },
            "at most 500",
        ),
        (
            {
                "cameras": [
                    {"camera_id": "cam-01", "state": "paused", "fps_analysed": 1.0, "incidents_open": 0}
                ]
            },
            "streaming",
        ),
        (
            {
                "cameras": [
                    {"camera_id": "cam-01", "state": "streaming", "fps_analysed": -1.0, "incidents_open": 0}
                ]
            },
            "greater than",
        ),
        (
            {
                "cameras": [
                    {"camera_id": "cam-01", "state": "streaming", "fps_analysed": 1.0, "incidents_open": 0},
                    {"camera_id": "cam-01", "state": "offline", "fps_analysed": 0.0, "incidents_open": 0},
                ]
            },
            "unique",
        ),
        ({"cameras": [{"camera_id": "cam-01", "state": "streaming", "fps_analysed": 1.0}]}, "Field required"),
        ({"config": {"applied_version": 7, "extra": 1}}, "Extra inputs"),
    ],
)
def test_health_2_rejects(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        NodeHealthV2.model_validate_json(_health_json(**changes))


def test_health_3_is_health_2_plus_the_scene_fields_of_each_camera() -> None:
    old = json.loads((EXAMPLES / "health-2.json").read_bytes())
    v2 = NodeHealthV2.model_validate_json(json.dumps(old))
    v3 = NodeHealthV3.model_validate_json(json.dumps(dict(old, schema="curbwatch.health/3")))
    new_fields = {"schema_", "cameras", "outbox_unacked", "oldest_unacked_s"}
    assert v2.model_dump(exclude=new_fields) == v3.model_dump(exclude=new_fields)
    assert [c.view for c in v3.cameras or []] == [None, None]
    v2_schema = json.loads((SCHEMA_DIR / "health-2.json").read_text(encoding="utf-8"))
    v3_schema = json.loads((SCHEMA_DIR / "health-3.json").read_text(encoding="utf-8"))
    assert set(v3_schema["properties"]) - set(v2_schema["properties"]) == {
        "outbox_unacked",
        "oldest_unacked_s",
    }
    added = set(v3_schema["$defs"]["CameraHealthV3"]["properties"]) - set(
        v2_schema["$defs"]["CameraHealthV2"]["properties"]
    )
    assert added == {"view", "static_regions", "relearns", "scene_ms"}
    with pytest.raises(ValidationError, match="view"):
        NodeHealthV3.model_validate_json(
            json.dumps(
                dict(old, schema="curbwatch.health/3", cameras=[dict(old["cameras"][0], view="moved")])
            )
        )


def test_health_4_is_health_3_plus_the_runtime_and_each_cameras_decode_share() -> None:
    old = json.loads((EXAMPLES / "health-3.json").read_bytes())
    v3 = NodeHealthV3.model_validate_json(json.dumps(old))
    v4 = NodeHealth.model_validate_json(json.dumps(dict(old, schema="curbwatch.health/4")))
    assert v3.model_dump(exclude={"schema_", "cameras"}) == v4.model_dump(
        exclude={"schema_", "cameras", "runtime"}
    )
    assert v4.runtime is None and [c.decode_share for c in v4.cameras or []] == [None, None]
    v3_schema = json.loads((SCHEMA_DIR / "health-3.json").read_text(encoding="utf-8"))
    v4_schema = json.loads((SCHEMA_DIR / "health-4.json").read_text(encoding="utf-8"))
    assert set(v4_schema["properties"]) - set(v3_schema["properties"]) == {"runtime"}
    added = set(v4_schema["$defs"]["CameraHealth"]["properties"]) - set(
        v3_schema["$defs"]["CameraHealthV3"]["properties"]
    )
    assert added == {"decode_share"}
    # Why they needed /4: a closed /3 consumer refuses them (docs/mqtt.md).
    current = json.loads((EXAMPLES / "health.json").read_bytes())
    with pytest.raises(ValidationError, match="Extra inputs"):
        NodeHealthV3.model_validate_json(json.dumps(dict(current, schema="curbwatch.health/3")))
    with pytest.raises(ValidationError, match="detector_threads"):
        NodeHealth.model_validate_json(json.dumps(dict(current, runtime={"detector_threads": 0})))


def test_camera_status_2_is_1_plus_the_view() -> None:
    old = json.loads((EXAMPLES / "camera-status-1.json").read_bytes())
    v2 = CameraStatus.model_validate_json(json.dumps(dict(old, schema="curbwatch.camera-status/2")))
    assert v2.view is None and v2.state.value == old["state"]
    with pytest.raises(ValidationError, match="view"):
        CameraStatus.model_validate_json(
            json.dumps(dict(old, schema="curbwatch.camera-status/2", view="tampered"))
        )


def test_health_1_refuses_the_new_blocks() -> None:
    """Why the new blocks needed /2: a closed /1 consumer refuses them (docs/mqtt.md)."""
    document = json.loads((EXAMPLES / "health.json").read_bytes())
    with pytest.raises(ValidationError, match="Extra inputs"):
        NodeHealthV1.model_validate_json(json.dumps(dict(document, schema="curbwatch.health/1")))
