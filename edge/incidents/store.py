"""Open incidents, cooldowns and candidates on the edge box's SQLite, so a restart resumes them.

The store works on a `sqlite_utils.Database` that the caller owns and writes with
`db.atomic()`, which nests as a savepoint: the edge node wraps
`engine.step(...)` and its outbox insert in one `with db.atomic():` so the incident
state and the outbox event commit together or not at all.

Times are stored twice: stream seconds of the run that wrote them (for people
reading the table) and wall-clock UTC (ISO 8601), which is what a resume uses,
because stream time restarts at 0 for a file and monotonic time changes across
process restarts. See IncidentEngine._resume for how they are re-anchored.
Candidate rows (one per camera and zone) keep wall-clock UTC only: only a resume reads them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from edge.incidents.persistence import (
    StoredCandidate,
    StoredCandidateObject,
    StoredCooldown,
    StoredIncident,
)
from edge.incidents.types import IncidentObject

OPEN_TABLE = "edge_incidents"
COOLDOWN_TABLE = "edge_incident_cooldowns"
CANDIDATE_TABLE = "edge_incident_candidates"


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC).isoformat()


def _object_dict(o: IncidentObject) -> dict[str, object]:
    return {
        "label": o.label,
        "confidence": o.confidence,
        "xyxy": list(o.xyxy),
        "bbox": list(o.bbox),
        "tracker_id": o.tracker_id,
    }


def _object(o: dict[str, Any]) -> IncidentObject:
    return IncidentObject(
        label=str(o["label"]),
        confidence=float(o["confidence"]),
        xyxy=tuple(float(v) for v in o["xyxy"]),  # type: ignore[arg-type]
        bbox=tuple(float(v) for v in o["bbox"]),  # type: ignore[arg-type]
        tracker_id=None if o["tracker_id"] is None else int(o["tracker_id"]),
    )


def _objects_json(objects: tuple[IncidentObject, ...]) -> str:
    return json.dumps([_object_dict(o) for o in objects])


def _objects(text: str) -> tuple[IncidentObject, ...]:
    return tuple(_object(o) for o in json.loads(text))


def _candidate_objects_json(objects: tuple[StoredCandidateObject, ...]) -> str:
    return json.dumps(
        [
            {
                **_object_dict(o.view),
                "first_seen_utc": _utc(o.first_seen_utc),
                "last_seen_utc": _utc(o.last_seen_utc),
            }
            for o in objects
        ]
    )


def _candidate_objects(text: str) -> tuple[StoredCandidateObject, ...]:
    return tuple(
        StoredCandidateObject(
            _object(o),
            datetime.fromisoformat(o["first_seen_utc"]),
            datetime.fromisoformat(o["last_seen_utc"]),
        )
        for o in json.loads(text)
    )


class IncidentStore:
    """Persistence of IncidentEngine state in three tables of `db`."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        with db.atomic():
            db[OPEN_TABLE].create(  # type: ignore[union-attr]
                {
                    "incident_id": str,
                    "camera_id": str,
                    "zone_id": str,
                    "seq": int,
                    "objects": str,
                    "first_seen_t": float,
                    "last_event_t": float,
                    "first_seen_utc": str,
                    "last_event_utc": str,
                    "last_seen_utc": str,
                },
                pk="incident_id",
                not_null={"camera_id", "zone_id", "seq", "objects", "first_seen_utc", "last_event_utc"},
                if_not_exists=True,
            )
            db[COOLDOWN_TABLE].create(  # type: ignore[union-attr]
                {
                    "incident_id": str,
                    "camera_id": str,
                    "zone_id": str,
                    "objects": str,
                    "until_utc": str,
                    "cleared_utc": str,
                },
                pk="incident_id",
                not_null={"camera_id", "zone_id", "objects", "until_utc"},
                if_not_exists=True,
            )
            db[CANDIDATE_TABLE].create(  # type: ignore[union-attr]
                {
                    "camera_id": str,
                    "zone_id": str,
                    "objects": str,
                    "first_seen_utc": str,  # the earliest of its objects', for people reading
                    "saved_utc": str,
                },
                pk=("camera_id", "zone_id"),  # one candidate per zone, like one open incident
                not_null={"objects", "first_seen_utc", "saved_utc"},
                if_not_exists=True,
            )

    def save_open(self, incident: StoredIncident) -> None:
        """Insert or replace the open incident (after opened and every updated event)."""
        with self._db.atomic():
            self._db[OPEN_TABLE].upsert(  # type: ignore[union-attr]
                {
                    "incident_id": incident.incident_id,
                    "camera_id": incident.camera_id,
                    "zone_id": incident.zone_id,
                    "seq": incident.seq,
                    "objects": _objects_json(incident.objects),
                    "first_seen_t": incident.first_seen_t,
                    "last_event_t": incident.last_event_t,
                    "first_seen_utc": _utc(incident.first_seen_utc),
                    "last_event_utc": _utc(incident.last_event_utc),
                    "last_seen_utc": _utc(incident.last_seen_utc),
                },
                pk="incident_id",
            )

    def save_cleared(self, incident_id: str, cooldown: StoredCooldown) -> None:
        """The incident is over: drop it from the open ones, remember its cooldown."""
        with self._db.atomic():
            self._db.execute(f"DELETE FROM [{OPEN_TABLE}] WHERE incident_id = ?", [incident_id])
            # Expired cooldowns of this camera are of no further use.
            self._db.execute(
                f"DELETE FROM [{COOLDOWN_TABLE}] WHERE camera_id = ? AND until_utc <= ?",
                [cooldown.camera_id, _utc(cooldown.cleared_utc)],
            )
            if cooldown.objects:
                self._db[COOLDOWN_TABLE].upsert(  # type: ignore[union-attr]
                    {
                        "incident_id": incident_id,
                        "camera_id": cooldown.camera_id,
                        "zone_id": cooldown.zone_id,
                        "objects": _objects_json(cooldown.objects),
                        "until_utc": _utc(cooldown.until_utc),
                        "cleared_utc": _utc(cooldown.cleared_utc),
                    },
                    pk="incident_id",
                )

    def load_open(self, camera_id: str) -> list[StoredIncident]:
        rows = self._db.query(
            f"SELECT * FROM [{OPEN_TABLE}] WHERE camera_id = ? ORDER BY first_seen_utc, incident_id",
            [camera_id],
        )
        return [
            StoredIncident(
                incident_id=row["incident_id"],
                camera_id=row["camera_id"],
                zone_id=row["zone_id"],
                seq=int(row["seq"]),
                objects=_objects(row["objects"]),
                first_seen_t=float(row["first_seen_t"]),
                last_event_t=float(row["last_event_t"]),
                first_seen_utc=datetime.fromisoformat(row["first_seen_utc"]),
                last_event_utc=datetime.fromisoformat(row["last_event_utc"]),
                last_seen_utc=datetime.fromisoformat(row["last_seen_utc"]),
            )
            for row in rows
        ]

    def load_cooldowns(self, camera_id: str, now_utc: datetime) -> list[StoredCooldown]:
        """Cooldowns of `camera_id` still running at `now_utc`."""
        rows = self._db.query(
            f"SELECT * FROM [{COOLDOWN_TABLE}] WHERE camera_id = ? ORDER BY until_utc", [camera_id]
        )
        found = []
        for row in rows:
            until = datetime.fromisoformat(row["until_utc"])
            if until > now_utc:
                cleared = datetime.fromisoformat(row["cleared_utc"])
                objects = _objects(row["objects"])
                found.append(StoredCooldown(row["camera_id"], row["zone_id"], objects, until, cleared))
        return found

    def save_candidate(self, candidate: StoredCandidate) -> None:
        """Insert or replace the zone's candidate (when its set of objects changed)."""
        if not candidate.objects:
            raise ValueError("StoredCandidate.objects: expected at least one object, got none")
        with self._db.atomic():
            self._db[CANDIDATE_TABLE].upsert(  # type: ignore[union-attr]
                {
                    "camera_id": candidate.camera_id,
                    "zone_id": candidate.zone_id,
                    "objects": _candidate_objects_json(candidate.objects),
                    "first_seen_utc": _utc(min(o.first_seen_utc for o in candidate.objects)),
                    "saved_utc": _utc(candidate.saved_utc),
                },
                pk=("camera_id", "zone_id"),
            )

    def delete_candidate(self, camera_id: str, zone_id: str) -> None:
        """The zone's candidate opened an incident, vanished or was dropped at a resume."""
        with self._db.atomic():
            self._db.execute(
                f"DELETE FROM [{CANDIDATE_TABLE}] WHERE camera_id = ? AND zone_id = ?", [camera_id, zone_id]
            )

    def load_candidates(self, camera_id: str) -> list[StoredCandidate]:
        rows = self._db.query(
            f"SELECT * FROM [{CANDIDATE_TABLE}] WHERE camera_id = ? ORDER BY zone_id", [camera_id]
        )
        return [
            StoredCandidate(
                camera_id=row["camera_id"],
                zone_id=row["zone_id"],
                objects=_candidate_objects(row["objects"]),
                saved_utc=datetime.fromisoformat(row["saved_utc"]),
            )
            for row in rows
        ]
