"""Read side: the queue, one incident with its timeline, shop history, the change token.

Every filter is a bound parameter; column names come from a fixed whitelist, never from input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

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


def queue(db: sqlite_utils.Database, flt: QueueFilter) -> QueuePage:
    base_where, base_params = flt.clause()
    status_where, status_params = flt.status_clause()
    columns = (
        "SELECT i.incident_id, i.node_id, i.camera_id, i.zone_id, i.shop_id, i.shop_name, i.label,"
        " i.confidence, i.state, i.opened_at, i.updated_at, i.evidence_path,"
        " COALESCE(w.status, 'pending') AS status"
    )
    if flt.status in ("pending", ""):
        # Oldest first along incidents(opened_at); pending = no workflow row yet.
        sql = (
            columns
            + " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            + _join(base_where, status_where)
            + " ORDER BY i.opened_at, i.incident_id LIMIT ? OFFSET ?"
        )
    else:
        # Reviewed ones, newest first along workflow(status, opened_at).
        sql = (
            columns
            + " FROM workflow w JOIN incidents i ON i.incident_id = w.incident_id"
            + _join(base_where, status_where)
            + " ORDER BY w.opened_at DESC, w.incident_id DESC LIMIT ? OFFSET ?"
        )
    page = max(0, flt.page)
    rows = list(db.query(sql, [*base_params, *status_params, PAGE_SIZE + 1, page * PAGE_SIZE]))
    counts = status_counts(db, flt)
    total = sum(counts.values())
    return QueuePage(rows[:PAGE_SIZE], counts, total, page, len(rows) > PAGE_SIZE, flt)


def status_counts(db: sqlite_utils.Database, flt: QueueFilter) -> dict[str, int]:
    base_where, params = flt.clause()
    counts = dict.fromkeys(STATUSES, 0)
    if not base_where:
        # Unfiltered: count the big table once, the workflow table on its status index.
        total = db.execute("SELECT count(*) FROM incidents").fetchone()[0]
        for status, n in db.execute("SELECT status, count(*) FROM workflow GROUP BY status"):
            counts[status] = n
        counts["pending"] = total - sum(counts.values())
        return counts
    sql = (
        "SELECT COALESCE(w.status, 'pending'), count(*) FROM incidents i"
        " LEFT JOIN workflow w ON w.incident_id = i.incident_id" + _join(base_where) + " GROUP BY 1"
    )
    for status, n in db.execute(sql, params):
        counts[status] = n
    return counts


def filter_options(db: sqlite_utils.Database) -> dict[str, list[str]]:
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


def incident(db: sqlite_utils.Database, incident_id: str) -> dict[str, Any] | None:
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
    for key in ("bbox", "objects"):
        try:
            row[key] = json.loads(row[key]) if row.get(key) else None
        except (TypeError, ValueError):
            row[key] = None
    return row


def events(db: sqlite_utils.Database, incident_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT seq, event, at, received_at FROM incident_events WHERE incident_id = ? ORDER BY seq",
            [incident_id],
        )
    )


def verdicts(db: sqlite_utils.Database, incident_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT verdict, reason, note, user, at FROM verdicts WHERE incident_id = ? ORDER BY id",
            [incident_id],
        )
    )


def reminders_for(db: sqlite_utils.Database, incident_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT id, channel, target, status, attempts, last_error, deadline_at, sent_at"
            " FROM reminders WHERE incident_id = ? ORDER BY id",
            [incident_id],
        )
    )


def shop_history(db: sqlite_utils.Database, shop_id: str, limit: int = 20) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT i.incident_id, i.label, i.opened_at, i.state, COALESCE(w.status, 'pending') AS status"
            " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            " WHERE i.shop_id = ? ORDER BY i.opened_at DESC LIMIT ?",
            [shop_id, limit],
        )
    )


def change_token(db: sqlite_utils.Database) -> str:
    """A cheap value that changes whenever the queue could: new events, verdicts, workflow moves."""
    events = db.execute("SELECT max(received_at) FROM incident_events").fetchone()[0]
    verdict = db.execute("SELECT max(id) FROM verdicts").fetchone()[0]
    moved = db.execute("SELECT max(updated_at) FROM workflow").fetchone()[0]
    return f"{events or 0}|{verdict or 0}|{moved or 0}"
