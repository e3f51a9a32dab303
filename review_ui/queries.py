"""Read side: the queue, one incident with its timeline, shop history, the change token.

Every filter is a bound parameter; column names come from a fixed whitelist, never from input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from uplink.database import Database

STATUSES = ("pending", "confirmed", "reminded", "rectified", "escalated", "rejected")
PAGE_SIZE = 50


@dataclass(frozen=True)
class QueueFilter:
    camera_id: str = ""
    zone_id: str = ""
    shop_id: str = ""
    status: str = "pending"  # one of STATUSES or "" for all
    date_from: str = ""  # YYYY-MM-DD, compared with opened_at's date
    date_to: str = ""
    page: int = 0

    def clause(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("i.camera_id", self.camera_id),
            ("i.zone_id", self.zone_id),
            ("i.shop_id", self.shop_id),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if self.date_from:
            where.append("i.opened_at >= ?")
            params.append(self.date_from)
        if self.date_to:
            where.append("i.opened_at < ?")  # next-day bound: the whole `date_to` day is inside
            params.append(self.date_to + "\uffff")
        return (" AND ".join(where), params)

    def status_clause(self) -> tuple[str, list[Any]]:
        if self.status == "pending":
            return ("w.incident_id IS NULL", [])
        if self.status:
            return ("w.status = ?", [self.status])
        return ("", [])


@dataclass(frozen=True)
class QueuePage:
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    total: int
    page: int
    has_more: bool
    filters: QueueFilter = field(default_factory=QueueFilter)


def _join(*parts: str) -> str:
    kept = [p for p in parts if p]
    return (" WHERE " + " AND ".join(kept)) if kept else ""


def queue(db: Database, flt: QueueFilter) -> QueuePage:
    base_where, base_params = flt.clause()
    status_where, status_params = flt.status_clause()
    columns = (
        "SELECT i.incident_id, i.node_id, i.camera_id, i.zone_id, i.shop_id, i.shop_name, i.label,"
        " i.confidence, i.state, i.opened_at, i.updated_at, i.evidence_path,"
        " COALESCE(w.status, 'pending') AS status, c.occurrences, c.first_opened_at AS case_opened_at"
    )
    if flt.status == "pending":
        # A case waiting for its verdict is one row, its newest occurrence (the head), oldest
        # first; then what the assigner has not reached.
        also = f" AND {base_where}" if base_where else ""
        sql = _waiting(columns, also) + " ORDER BY sort_at, 1 LIMIT ? OFFSET ?"  # 1: the incident id
        params = _waiting_params(db, list(base_params))
    elif not flt.status:
        # Every incident, oldest first along incidents(opened_at).
        sql = (
            columns
            + " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            + CASED
            + _join(base_where)
            + " ORDER BY i.opened_at, i.incident_id LIMIT ? OFFSET ?"
        )
        params = list(base_params)
    else:
        # Reviewed ones, newest first along workflow(status, opened_at).
        sql = (
            columns
            + " FROM workflow w JOIN incidents i ON i.incident_id = w.incident_id"
            + CASED
            + _join(base_where, status_where)
            + " ORDER BY w.opened_at DESC, w.incident_id DESC LIMIT ? OFFSET ?"
        )
        params = [*base_params, *status_params]
    page = max(0, flt.page)
    rows = list(db.query(sql, [*params, PAGE_SIZE + 1, page * PAGE_SIZE]))
    counts = status_counts(db, flt)
    total = sum(counts.values())
    return QueuePage(rows[:PAGE_SIZE], counts, total, page, len(rows) > PAGE_SIZE, flt)


CASED = (
    " LEFT JOIN case_incidents ci ON ci.incident_id = i.incident_id LEFT JOIN cases c ON c.id = ci.case_id"
)


def _waiting(columns: str, also: str) -> str:
    """What waits for a verdict, filtered by `also` (" AND ..." on i): each undecided case as
    its head, along cases(decided, last_opened_at), then the incidents the case assigner has not
    reached yet (normally none: it runs right after each ingest)."""
    return (
        columns
        + ", c.last_opened_at AS sort_at FROM cases c JOIN incidents i ON i.incident_id = c.head_incident_id"
        " LEFT JOIN workflow w ON w.incident_id = i.incident_id"
        " WHERE c.decided = 0 AND w.incident_id IS NULL"
        + also
        + " UNION ALL "
        + columns
        + ", COALESCE(i.opened_at, i.first_seen_at) AS sort_at FROM incidents i"
        " LEFT JOIN workflow w ON w.incident_id = i.incident_id"
        + CASED
        + " WHERE i.rowid > ? AND ci.incident_id IS NULL"
        " AND w.incident_id IS NULL" + also
    )


def _waiting_params(db: Database, params: list[Any]) -> list[Any]:
    """The two halves' filters and, between them, the assigner's watermark as a value: as a
    sub-select PostgreSQL planned for a third of all incidents (a hash of all case_incidents,
    70 ms at 300k incidents); as a value it reads the few rows above it (3 ms)."""
    watermark = db.execute("SELECT last_rowid FROM case_progress").fetchone()[0]
    return [*params, watermark, *params]


def status_counts(db: Database, flt: QueueFilter) -> dict[str, int]:
    """Incidents per status; `pending` counts what the pending queue lists: cases, not occurrences."""
    base_where, params = flt.clause()
    counts = dict.fromkeys(STATUSES, 0)
    if base_where:
        sql = (
            "SELECT w.status, count(*) FROM workflow w JOIN incidents i ON i.incident_id = w.incident_id"
            + _join(base_where)
            + " GROUP BY 1"
        )
    else:  # unfiltered: the workflow table on its status index
        sql = "SELECT status, count(*) FROM workflow GROUP BY status"
    for status, n in db.execute(sql, params):
        counts[status] = n
    also = f" AND {base_where}" if base_where else ""
    counts["pending"] += db.execute(
        "SELECT count(*) FROM (" + _waiting("SELECT i.incident_id", also) + ") AS waiting",
        _waiting_params(db, list(params)),
    ).fetchone()[0]
    return counts


def filter_options(db: Database) -> dict[str, list[str]]:
    """Known cameras, zones and shops for the filter drop-downs (small tables / distinct scans)."""

    def distinct(sql: str) -> list[str]:
        return [r[0] for r in db.execute(sql) if r[0]]

    cameras = (
        distinct("SELECT DISTINCT camera_id FROM cameras ORDER BY 1") if "cameras" in db.table_names() else []
    )
    return {
        "cameras": cameras,
        "shops": distinct("SELECT id FROM shops ORDER BY 1"),
    }


def incident(db: Database, incident_id: str) -> dict[str, Any] | None:
    rows = list(
        db.query(
            "SELECT i.*, COALESCE(w.status, 'pending') AS status, w.deadline_at"
            " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            " WHERE i.incident_id = ?",
            [incident_id],
        )
    )
    if not rows:
        return None
    row = rows[0]
    for key in ("bbox", "objects", "evidence_objects"):
        try:
            row[key] = json.loads(row[key]) if row.get(key) else None
        except (TypeError, ValueError):
            row[key] = None
    return row


def events(db: Database, incident_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT seq, event, at, received_at FROM incident_events WHERE incident_id = ? ORDER BY seq",
            [incident_id],
        )
    )


def verdicts(db: Database, incident_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            'SELECT verdict, reason, note, username AS "user", at FROM verdicts'
            " WHERE incident_id = ? ORDER BY id",
            [incident_id],
        )
    )


def reminders_for(db: Database, incident_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT id, channel, target, status, attempts, last_error, deadline_at, sent_at, step,"
            " next_attempt_at, provider_ref, delivery, delivery_detail, delivered_at"
            " FROM reminders WHERE incident_id = ? ORDER BY id",
            [incident_id],
        )
    )


def shop_history(db: Database, shop_id: str, limit: int = 20) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT i.incident_id, i.label, i.opened_at, i.state, COALESCE(w.status, 'pending') AS status"
            " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            " WHERE i.shop_id = ? ORDER BY i.opened_at DESC LIMIT ?",
            [shop_id, limit],
        )
    )


def case_occurrences(db: Database, incident_id: str) -> list[dict[str, Any]]:
    """Every occurrence of this incident's case, oldest first (just itself when it has no case)."""
    return list(
        db.query(
            "SELECT i.incident_id, i.label, COALESCE(i.opened_at, i.first_seen_at) AS opened_at, i.state,"
            " i.cleared_at, i.updated_at, COALESCE(w.status, 'pending') AS status"
            " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            " WHERE i.incident_id IN (SELECT ci.incident_id FROM case_incidents ci"
            " JOIN case_incidents mine ON mine.case_id = ci.case_id WHERE mine.incident_id = ?)"
            " OR i.incident_id = ? ORDER BY 3, 1",
            [incident_id, incident_id],
        )
    )


def change_token(db: Database) -> str:
    """A cheap value that changes whenever the queue could: events, verdicts, moves, case joins."""
    events = db.execute("SELECT max(received_at) FROM incident_events").fetchone()[0]
    verdict = db.execute("SELECT max(id) FROM verdicts").fetchone()[0]
    moved = db.execute("SELECT max(updated_at) FROM workflow").fetchone()[0]
    cased = db.execute("SELECT max(rowid) FROM case_incidents").fetchone()[0]
    return f"{events or 0}|{verdict or 0}|{moved or 0}|{cased or 0}"


SCENE_VIEWS = frozenset({"learning", "watching", "view_changed", "obstructed"})


def camera_overview(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cameras & nodes page: nodes with their last health, cameras with what health adds.

    A camera's `state` comes from its retained status topic (sent on every change) when there
    is one; health (every interval) adds fps and open incidents, and the later last frame.
    A node's `rejection` is the config it refused, from health (curbwatch.health/2 and /3).
    A camera's `view` (learning, watching, view_changed, obstructed) is the edge scene model's
    (curbwatch.camera-status/2, health/3): `view_changed` and `obstructed` are tamper alarms.
    """
    nodes = list(
        db.query("SELECT node_id, status, health, config_version, updated_at FROM nodes ORDER BY node_id")
    )
    reported: dict[tuple[str, str], dict[str, Any]] = {}
    for node in nodes:
        health = _json_object(node["health"])
        node["health"] = health
        config = health.get("config")
        node["rejection"] = None
        if isinstance(config, dict) and config.get("rejected_at"):
            node["rejection"] = {
                "version": config.get("rejected_version"),
                "at": config["rejected_at"],
                "problems": [p for p in config.get("problems") or [] if isinstance(p, str)],
            }
        for camera in health.get("cameras") or []:
            if isinstance(camera, dict) and camera.get("camera_id"):
                reported[(node["node_id"], camera["camera_id"])] = camera
    cameras = list(
        db.query(
            "SELECT node_id, camera_id, state, view, last_frame_at, snapshot_path, updated_at"
            " FROM cameras ORDER BY node_id, camera_id"
        )
    )
    known = {(row["node_id"], row["camera_id"]) for row in cameras}
    for node_id, camera_id in reported.keys() - known:  # in health, no status message yet
        cameras.append(
            {
                "node_id": node_id,
                "camera_id": camera_id,
                "state": None,
                "view": None,
                "last_frame_at": None,
                "snapshot_path": None,
                "updated_at": None,
            }
        )
    for row in cameras:
        camera = reported.get((row["node_id"], row["camera_id"]), {})
        row["state"] = row["state"] or camera.get("state")
        # The scene view: the status topic has the latest change; health the view at its interval.
        view = row["view"] or camera.get("view")
        row["view"] = view if view in SCENE_VIEWS else None
        row["static_regions"] = camera.get("static_regions")
        frames = [at for at in (row["last_frame_at"], camera.get("last_frame_at")) if isinstance(at, str)]
        row["last_frame_at"] = max(frames) if frames else None  # UTC ISO with Z: sorts as text
        row["fps_analysed"] = camera.get("fps_analysed")
        row["incidents_open"] = camera.get("incidents_open")
    cameras.sort(key=lambda row: (row["node_id"], row["camera_id"]))
    return nodes, cameras


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
