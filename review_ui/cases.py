"""Cases: a shop's repeat incidents grouped so an inspector decides them once.

A looping clip, or goods carried out again after an hour, gives one shop many incidents. A new
incident joins the shop's newest case when that case is still undecided (its head incident has
no verdict) and its latest occurrence opened within `window_h`; otherwise it starts a case.
The head is the newest occurrence: its evidence is the freshest, and the queue shows only it.
A verdict on any occurrence decides every undecided occurrence of its case (review.Reviewer).

New incidents are assigned right after each ingest (review_ui.service) and on every reminder
worker tick, in the review server's own transaction: the ingest's write path stays the
uplink's alone.
"""

from __future__ import annotations

from datetime import timedelta

from review_ui.clock import parse_iso
from review_ui.db import Store
from uplink.database import Database

BATCH = 500  # incidents assigned per tick; a backlog drains over a few ticks


def assign_new(db: Database, window_h: float) -> int:
    """Give incidents stored since the last call a case, in the order the ingest stored them
    (rowid); returns how many were assigned. Call inside a write transaction: the progress row
    (case_progress) and the LEFT JOIN keep two review processes from assigning one twice."""
    after = db.execute("SELECT last_rowid FROM case_progress WHERE id = 1").fetchone()[0]
    rows = db.execute(
        "SELECT i.rowid, i.incident_id, i.shop_id, COALESCE(i.opened_at, i.first_seen_at), w.incident_id"
        " FROM incidents i LEFT JOIN case_incidents ci ON ci.incident_id = i.incident_id"
        " LEFT JOIN workflow w ON w.incident_id = i.incident_id"
        " WHERE i.rowid > ? AND ci.incident_id IS NULL ORDER BY i.rowid LIMIT ?",
        [after, BATCH],
    ).fetchall()
    window = timedelta(hours=window_h)
    for _rowid, incident_id, shop_id, opened_at, decided in rows:
        # Decided before this tick saw it (a fast inspector): it cannot join an undecided case.
        joinable = window_h > 0 and decided is None
        case_id = _open_case(db, shop_id, opened_at, window) if joinable else None
        if case_id is None:
            cursor = db.execute(
                "INSERT INTO cases (shop_id, first_opened_at, last_opened_at, occurrences,"
                " head_incident_id, decided) VALUES (?, ?, ?, 1, ?, ?) RETURNING id",
                [shop_id, opened_at, opened_at, incident_id, int(decided is not None)],
            )
            case_id = int(cursor.fetchone()[0])
        else:
            # The head is the newest by opening time, also when an older one arrives late.
            db.execute(
                "UPDATE cases SET occurrences = occurrences + 1,"
                " head_incident_id = CASE WHEN ? >= last_opened_at THEN ? ELSE head_incident_id END,"
                " first_opened_at = CASE WHEN ? < first_opened_at THEN ? ELSE first_opened_at END,"
                " last_opened_at = CASE WHEN ? > last_opened_at THEN ? ELSE last_opened_at END"
                " WHERE id = ?",
                [opened_at, incident_id, *[opened_at] * 4, case_id],
            )
        db.execute("INSERT INTO case_incidents (incident_id, case_id) VALUES (?, ?)", [incident_id, case_id])
    # Fewer than a batch: nothing unassigned is left up to the newest row.
    last = rows[-1][0] if len(rows) == BATCH else db.execute("SELECT max(rowid) FROM incidents").fetchone()[0]
    db.execute("UPDATE case_progress SET last_rowid = ? WHERE id = 1", [last or after])
    return len(rows)


def _open_case(db: Database, shop_id: str, opened_at: str, window: timedelta) -> int | None:
    """The shop's newest case if it is undecided and recent enough to join, else None."""
    row = db.execute(
        "SELECT id, last_opened_at, decided FROM cases WHERE shop_id = ?"
        " ORDER BY last_opened_at DESC, id DESC LIMIT 1",
        [shop_id],
    ).fetchone()
    if row is None or row[2]:  # no case yet, or it has its verdict
        return None
    if abs(parse_iso(opened_at) - parse_iso(row[1])) > window:  # abs: a late-arriving older one
        return None
    return int(row[0])


def mark_decided(db: Database, incident_id: str, decided: bool) -> None:
    """After a verdict on the incident's case (or its undo): the case leaves (or re-enters) the queue."""
    db.execute(
        "UPDATE cases SET decided = ? WHERE id = (SELECT case_id FROM case_incidents WHERE incident_id = ?)",
        [int(decided), incident_id],
    )


def siblings(db: Database, incident_id: str) -> list[str]:
    """Every incident of this one's case, this one included, oldest first ([id] when unassigned)."""
    ids = [
        r[0]
        for r in db.execute(
            "SELECT i.incident_id FROM case_incidents mine"
            " JOIN case_incidents ci ON ci.case_id = mine.case_id"
            " JOIN incidents i ON i.incident_id = ci.incident_id"
            " WHERE mine.incident_id = ? ORDER BY COALESCE(i.opened_at, i.first_seen_at), 1",
            [incident_id],
        )
    ]
    return ids or [incident_id]


def case_of(db: Database, incident_id: str) -> dict[str, object] | None:
    """The case row (id, occurrences, first/last opened, head) of an incident, or None."""
    rows = list(
        db.query(
            "SELECT c.* FROM cases c JOIN case_incidents ci ON ci.case_id = c.id WHERE ci.incident_id = ?",
            [incident_id],
        )
    )
    return rows[0] if rows else None


class CaseAssigner:
    """The worker's tick (and the ingest's callback): assign what the ingest added since."""

    def __init__(self, store: Store, window_h: float) -> None:
        self.store = store
        self.window_h = window_h

    def run_once(self) -> int:
        with self.store.write() as db:
            return assign_new(db, self.window_h)
