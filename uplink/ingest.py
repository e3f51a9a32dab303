"""Central ingest: validate each MQTT message and store it idempotently in the review database.

`Ingest.handle(topic, payload)` knows nothing about MQTT sessions, so every rule is testable
without a broker. Rules: (incident_id, seq) is stored once; an incident's state and last_seq
only move forward; anything malformed goes to dead_letters with a reason; nothing raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from pydantic import ValidationError

from uplink.clock import Clock, format_utc, utc_now
from uplink.database import Database
from uplink.files import JPEG_MAGIC, write_atomic
from uplink.messages import (
    CAMERA_STATUS_SCHEMA_V1,
    HEALTH_SCHEMA_V1,
    HEALTH_SCHEMA_V2,
    HEALTH_SCHEMA_V3,
    INCIDENT_SCHEMA_V1,
    INCIDENT_SCHEMA_V2,
    CameraStatus,
    CameraStatusV1,
    IncidentEventKind,
    IncidentMessage,
    IncidentMessageV1,
    IncidentMessageV2,
    NodeHealth,
    NodeHealthV1,
    NodeHealthV2,
    NodeHealthV3,
    NodeState,
    WireModel,
    ZonesReport,
)
from uplink.topics import DEFAULT_PREFIX, ParsedTopic, TopicError, TopicKind, Topics

log = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEAD_LETTER_KEEP_BYTES = 64 * 1024
_M = TypeVar("_M", bound=WireModel)


class OutcomeKind(StrEnum):
    STORED = "stored"  # a new incident event that advanced its incident
    LATE = "late"  # a new event older than the incident's last_seq: kept, state untouched
    DUPLICATE = "duplicate"  # (incident_id, seq) already stored
    UPDATED = "updated"  # node or camera state stored
    IGNORED = "ignored"  # valid but nothing to store (e.g. a cleared retained topic)
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True)
class IngestOutcome:
    kind: OutcomeKind
    reason: str | None = None
    incident_id: UUID | None = None
    seq: int | None = None  # with incident_id: the event now in the database
    node_id: str | None = None

    @property
    def stored_event(self) -> bool:
        """The event is in the database (new, late or a duplicate): the node may let it go."""
        return (
            self.incident_id is not None
            and self.seq is not None
            and self.kind
            in (
                OutcomeKind.STORED,
                OutcomeKind.LATE,
                OutcomeKind.DUPLICATE,
            )
        )


class Rejected(Exception):
    """Input that goes to dead_letters; the message is the reason."""


class Ingest:
    def __init__(
        self,
        db: Database,
        evidence_dir: Path,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        clock: Clock = utc_now,
        on_change: Callable[[UUID], None] | None = None,
    ) -> None:
        self.db = db
        self.evidence_dir = evidence_dir
        self.topics = Topics(prefix)
        self.max_payload_bytes = max_payload_bytes
        self._clock = clock
        self._on_change = on_change

    def handle(self, topic: str, payload: bytes) -> IngestOutcome:
        return self.handle_batch([(topic, payload)])[0]

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> list[IngestOutcome]:
        """One transaction for the batch, one savepoint per message. Raises only when the
        database itself fails (then nothing of the batch is committed and it can be retried)."""
        outcomes = []
        with self.db.transaction():
            for topic, payload in messages:
                outcomes.append(self._handle_one(topic, payload))
        if self._on_change is not None:
            for outcome in outcomes:
                if outcome.incident_id is not None and outcome.kind in (OutcomeKind.STORED, OutcomeKind.LATE):
                    self._notify(outcome.incident_id)
        return outcomes

    def _notify(self, incident_id: UUID) -> None:
        assert self._on_change is not None
        try:
            self._on_change(incident_id)
        except Exception:
            log.exception("on_change failed for incident %s", incident_id)

    def _handle_one(self, topic: str, payload: bytes) -> IngestOutcome:
        received_at = format_utc(self._clock())
        try:
            with self.db.atomic():  # a savepoint: a failed message leaves no partial rows
                return self._dispatch(topic, payload, received_at)
        except Rejected as exc:
            reason = str(exc)
        except Exception as exc:  # a bug must not stop the ingest; keep the input for replay
            log.exception("ingest failed on topic %s", topic)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        log.warning("dead letter on %s (%d bytes): %s", topic, len(payload), reason)
        self.db.execute(
            "INSERT INTO dead_letters (topic, received_at, reason, payload, payload_size)"
            " VALUES (?, ?, ?, ?, ?)",
            [topic, received_at, reason[:2000], payload[:DEAD_LETTER_KEEP_BYTES], len(payload)],
        )
        return IngestOutcome(OutcomeKind.DEAD_LETTER, reason)

    def _dispatch(self, topic: str, payload: bytes, received_at: str) -> IngestOutcome:
        if len(payload) > self.max_payload_bytes:
            raise Rejected(f"payload of {len(payload)} bytes exceeds the limit of {self.max_payload_bytes}")
        try:
            where = self.topics.parse(topic)
        except TopicError as exc:
            raise Rejected(str(exc)) from exc
        if where.kind is TopicKind.NODE_STATUS:
            return self._node_status(where, payload, received_at)
        if not payload:
            if where.kind is TopicKind.INCIDENT:  # events are never retained: empty is broken input
                raise Rejected("empty incident payload")
            return IngestOutcome(OutcomeKind.IGNORED, "empty payload")  # a cleared retained topic
        if where.kind is TopicKind.INCIDENT:
            message = _parse_incident(payload)
            _check_origin(where, message.node_id, message.camera_id)
            return self._incident(message, received_at)
        if where.kind is TopicKind.NODE_HEALTH:
            health = _parse_health(payload)
            _check_origin(where, health.node_id, None)
            self._upsert_node(
                where.node_id, received_at, health=payload.decode(), config=health.config_version
            )
            return IngestOutcome(OutcomeKind.UPDATED)
        if where.kind is TopicKind.CAMERA_STATUS:
            status = _parse_camera_status(payload)
            _check_origin(where, status.node_id, status.camera_id)
            last_frame = format_utc(status.last_frame_at) if status.last_frame_at else None
            view = getattr(status, "view", None)
            self._upsert_camera(
                where,
                received_at,
                state=status.state.value,
                last_frame_at=last_frame,
                view=None if view is None else view.value,
            )
            return IngestOutcome(OutcomeKind.UPDATED)
        if where.kind is TopicKind.SNAPSHOT:
            if not payload.startswith(JPEG_MAGIC):
                raise Rejected("snapshot is not a JPEG (no FF D8 FF signature)")
            relative = f"snapshots/{where.node_id}/{where.camera_id}.jpg"
            write_atomic(self.evidence_dir / relative, payload)
            self._upsert_camera(where, received_at, snapshot_path=relative)
            return IngestOutcome(OutcomeKind.UPDATED)
        if where.kind is TopicKind.CAMERA_ZONES:
            report = _parse(ZonesReport, payload)
            _check_origin(where, report.node_id, report.camera_id)
            self._zones_report(where, report, received_at)
            return IngestOutcome(OutcomeKind.UPDATED)
        return IngestOutcome(OutcomeKind.IGNORED, f"{where.kind.value} is not ingested")

    def _zones_report(self, where: ParsedTopic, report: ZonesReport, received_at: str) -> None:
        row = {
            "node_id": report.node_id,
            "camera_id": report.camera_id,
            "sha256": report.sha256,
            "source": report.source.value,
            "path": report.path,
            "config_version": report.config_version,
            "at": format_utc(report.at),
            "received_at": received_at,
        }
        if report.document is not None:  # a report without the text never erases a known one
            row["document"] = report.document
        _upsert(self.db, "zone_reports", row, ("node_id", "camera_id", "sha256"))
        self._upsert_camera(where, received_at, zones_sha256=report.sha256)

    def _node_status(self, where: ParsedTopic, payload: bytes, received_at: str) -> IngestOutcome:
        text = payload.decode("utf-8", errors="replace").strip()
        if text not in {state.value for state in NodeState}:
            raise Rejected(f"node status must be 'online' or 'offline', got {text[:40]!r}")
        self._upsert_node(where.node_id, received_at, status=text)
        return IngestOutcome(OutcomeKind.UPDATED)

    def _upsert_node(self, node_id: str, received_at: str, **columns: Any) -> None:
        row = {"node_id": node_id, "updated_at": received_at}
        if "status" in columns:
            row["status"] = columns["status"]
        if "health" in columns:
            row["health"] = columns["health"]
            row["config_version"] = columns["config"]
        _upsert(self.db, "nodes", row, ("node_id",))

    def _upsert_camera(self, where: ParsedTopic, received_at: str, **columns: str | None) -> None:
        row = {"node_id": where.node_id, "camera_id": where.camera_id, "updated_at": received_at, **columns}
        _upsert(self.db, "cameras", row, ("node_id", "camera_id"))

    def _incident(self, message: IncidentMessageV1, received_at: str) -> IngestOutcome:
        incident_id = str(message.incident_id)
        existing = next(self.db.query("SELECT * FROM incidents WHERE incident_id = ?", [incident_id]), None)
        if existing is not None and existing["node_id"] != message.node_id:
            raise Rejected(
                f"incident {incident_id} belongs to node {existing['node_id']}, not {message.node_id}"
            )
        inserted = self.db.execute(
            "INSERT INTO incident_events (incident_id, seq, event, at, payload, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                incident_id,
                message.seq,
                message.event.value,
                format_utc(message.at),
                message.model_dump_json(by_alias=True, exclude={"evidence", "before_now"}, exclude_none=True),
                received_at,
            ],
        ).rowcount

        def stored(kind: OutcomeKind) -> IngestOutcome:
            return IngestOutcome(kind, None, message.incident_id, message.seq, message.node_id)

        if not inserted:
            return stored(OutcomeKind.DUPLICATE)
        evidence_path = None
        if message.evidence is not None:
            evidence_path = f"{incident_id}/{message.seq}.jpg"
            write_atomic(self.evidence_dir / evidence_path, message.evidence.jpeg())
        before_now = getattr(message, "before_now", None)  # curbwatch.incident/2
        before_now_path = None
        if before_now is not None:
            before_now_path = f"{incident_id}/{message.seq}-before-now.jpg"
            write_atomic(self.evidence_dir / before_now_path, before_now.jpeg())
        if existing is None:
            row = _new_incident(message, evidence_path, received_at)
            if before_now_path is not None:
                row["before_now_path"] = before_now_path
            # curbwatch.incident/3: the zones it was raised under; set once, never moved on
            row["zones_sha256"] = getattr(message, "zones_sha256", None)
            row["zones_config_version"] = getattr(message, "zones_config_version", None)
            if evidence_path is not None:
                row["evidence_objects"] = _evidence_objects(message)
            self.db.execute(
                f"INSERT INTO incidents ({', '.join(row)}) VALUES ({', '.join(':' + name for name in row)})",
                row,
            )
            return stored(OutcomeKind.STORED)
        newer = message.seq > existing["last_seq"]
        changes = _advance(existing, message, evidence_path, newer)
        if before_now_path is not None and (newer or existing["before_now_path"] is None):
            changes["before_now_path"] = before_now_path
        if "evidence_path" in changes:  # the objects go with their picture, never with another
            changes["evidence_objects"] = _evidence_objects(message)
        if changes:
            assignments = ", ".join(f"{name} = :{name}" for name in changes)
            self.db.execute(
                f"UPDATE incidents SET {assignments} WHERE incident_id = :incident_id",
                {**changes, "incident_id": incident_id},
            )
        return stored(OutcomeKind.STORED if newer else OutcomeKind.LATE)


def _upsert(db: Database, table: str, row: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Insert or update only the given columns. Plain SQL: sqlite-utils' upsert introspects the
    table on every call, which halved ingest throughput. Names come from this module, not input."""
    names = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    updates = ", ".join(f"{name} = excluded.{name}" for name in row if name not in keys)
    db.execute(
        f"INSERT INTO {table} ({names}) VALUES ({values})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
        row,
    )


def _parse(model: type[_M], payload: bytes) -> _M:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise Rejected(f"expected a JSON object, got {type(document).__name__}")
    expected = model.model_fields["schema_"].default
    if document.get("schema") != expected:
        raise Rejected(f"unknown schema {str(document.get('schema'))[:80]!r}, expected {expected!r}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:10]
        )
        raise Rejected(f"invalid {model.__name__}: {details}") from exc


def _schema_of(payload: bytes) -> object:
    try:
        return json.loads(payload).get("schema")
    except (ValueError, AttributeError):  # not JSON, not an object: _parse says what is wrong
        return None


def _parse_health(payload: bytes) -> NodeHealth | NodeHealthV3 | NodeHealthV2 | NodeHealthV1:
    """/4 from current nodes; /3, /2, /1 from nodes not upgraded yet (docs/mqtt.md: server first)."""
    schema = _schema_of(payload)
    if schema == HEALTH_SCHEMA_V1:
        return _parse(NodeHealthV1, payload)
    if schema == HEALTH_SCHEMA_V2:
        return _parse(NodeHealthV2, payload)
    if schema == HEALTH_SCHEMA_V3:
        return _parse(NodeHealthV3, payload)
    return _parse(NodeHealth, payload)


def _parse_camera_status(payload: bytes) -> CameraStatus | CameraStatusV1:
    """/2 from current nodes (with the scene view), /1 from nodes not upgraded yet."""
    if _schema_of(payload) == CAMERA_STATUS_SCHEMA_V1:
        return _parse(CameraStatusV1, payload)
    return _parse(CameraStatus, payload)


def _check_origin(where: ParsedTopic, node_id: str, camera_id: str | None) -> None:
    if node_id != where.node_id:
        raise Rejected(f"node_id {node_id!r} in payload does not match {where.node_id!r} in topic")
    if camera_id is not None and camera_id != where.camera_id:
        raise Rejected(f"camera_id {camera_id!r} in payload does not match {where.camera_id!r} in topic")


def _parse_incident(payload: bytes) -> IncidentMessage | IncidentMessageV2 | IncidentMessageV1:
    """/3 from current nodes (with the zones they ran), /2 (with the BEFORE / NOW picture) and
    /1 from nodes not upgraded yet."""
    schema = _schema_of(payload)
    if schema == INCIDENT_SCHEMA_V1:
        return _parse(IncidentMessageV1, payload)
    if schema == INCIDENT_SCHEMA_V2:
        return _parse(IncidentMessageV2, payload)
    return _parse(IncidentMessage, payload)


def _without_observation(message: IncidentMessageV1) -> bool:
    return not message.objects and message.confidence == 0.0 and message.label == "unknown"


def _details(message: IncidentMessageV1) -> dict[str, Any]:
    """The columns that follow the newest event."""
    return {
        "zone_id": message.zone_id,
        "shop_id": message.shop.id,
        "shop_name": message.shop.name,
        "label": message.label,
        "confidence": message.confidence,
        "bbox": json.dumps(list(message.bbox)),
        "objects": json.dumps([obj.model_dump(mode="json") for obj in message.objects]),
        "updated_at": format_utc(message.at),
        "last_seq": message.seq,
    }


def _evidence_objects(message: IncidentMessageV1) -> str | None:
    """JSON of the objects as numbered in the message's evidence (curbwatch.incident/3), or None."""
    objects = getattr(message, "evidence_objects", None)
    if objects is None:
        return None
    return json.dumps([obj.model_dump(mode="json") for obj in objects])


def _new_incident(message: IncidentMessageV1, evidence_path: str | None, received_at: str) -> dict[str, Any]:
    cleared = message.event is IncidentEventKind.CLEARED
    at = format_utc(message.at)
    return {
        "incident_id": str(message.incident_id),
        "node_id": message.node_id,
        "camera_id": message.camera_id,
        **_details(message),
        "state": "cleared" if cleared else "open",
        "first_seen_at": format_utc(message.first_seen_at),
        "opened_at": at if message.event is IncidentEventKind.OPENED else None,
        "cleared_at": at if cleared else None,
        "evidence_path": evidence_path,
        "received_at": received_at,
    }


def _advance(
    existing: dict[str, Any], message: IncidentMessageV1, evidence_path: str | None, newer: bool
) -> dict[str, Any]:
    """Changes for an incident that already has a row: facts from late events fill gaps, but
    only a newer event replaces details, and nothing turns 'cleared' back into 'open'."""
    at = format_utc(message.at)
    changes: dict[str, Any] = _details(message) if newer else {}
    if newer and _without_observation(message):
        # A clear with nothing seen (its zone was removed, the schedule ended) must not replace
        # the best observation with "unknown (0.00)": only the times and seq move on.
        changes = {key: changes[key] for key in ("updated_at", "last_seq")}
    if message.event is IncidentEventKind.OPENED and existing["opened_at"] is None:
        changes["opened_at"] = at
    if message.event is IncidentEventKind.CLEARED and existing["state"] != "cleared":
        changes["state"] = "cleared"
        changes["cleared_at"] = at
    if evidence_path is not None and (newer or existing["evidence_path"] is None):
        changes["evidence_path"] = evidence_path
    return changes
