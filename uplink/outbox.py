"""The durable outbox on the edge: an event is a committed SQLite row before anything is sent.

Use it inside the edge's own transaction so the incident state and its event commit together:

    outbox = Outbox(db)                       # db: the edge's sqlite_utils.Database (or a path)
    with outbox.transaction():                # BEGIN IMMEDIATE; a savepoint when already inside one
        db["incident_state"].upsert(state_row, pk="incident_id")
        outbox.enqueue(message, topics.incident(node_id, camera_id))
    # an exception in the block (OutboxFull included) rolls back both

Rows are never deleted before the centre acknowledged them: `sent_at` is the broker's PUBACK,
`acked_at` the centre's end-to-end acknowledgement (curbwatch.ack/1, after its commit). A row
sent but not acknowledged within the publisher's ack timeout is made pending again and re-sent
(the ingest is idempotent by (incident_id, seq)). Acknowledged rows are pruned after `retention`.
Rows that are not incident events are acknowledged by their PUBACK.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlite_utils

from uplink.clock import Clock, format_utc, utc_now
from uplink.messages import IncidentMessageV1, WireModel, to_json
from uplink.sqlite import open_database, write_transaction

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_RETENTION = timedelta(days=7)
_ROW_OVERHEAD_BYTES = 512  # topic, timestamps, index entries: a margin so the check is not optimistic

migrations = sqlite_utils.Migrations("curbwatch.uplink.outbox")


@migrations()
def m001_outbox(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE outbox (
            position INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: send order survives pruning
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            qos INTEGER NOT NULL CHECK (qos IN (0, 1)),
            retain INTEGER NOT NULL DEFAULT 0 CHECK (retain IN (0, 1)),
            incident_id TEXT,
            seq INTEGER,
            created_at TEXT NOT NULL,
            sent_at TEXT
        );
        CREATE INDEX outbox_unsent ON outbox(position) WHERE sent_at IS NULL;
        CREATE INDEX outbox_sent ON outbox(sent_at) WHERE sent_at IS NOT NULL;
        """
    )


@migrations()
def m002_end_to_end_ack(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN acked_at TEXT;
        UPDATE outbox SET acked_at = sent_at WHERE sent_at IS NOT NULL;  -- before: PUBACK was all
        CREATE INDEX outbox_unacked ON outbox(incident_id, seq) WHERE acked_at IS NULL;
        DROP INDEX outbox_sent;
        CREATE INDEX outbox_acked ON outbox(acked_at) WHERE acked_at IS NOT NULL;
        """
    )


class OutboxFull(RuntimeError):
    """The quota is reached by unsent events; the caller's transaction must not commit."""


@dataclass(frozen=True)
class OutboxRow:
    position: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    incident_id: str | None
    seq: int | None
    created_at: str


class Outbox:
    def __init__(
        self,
        db: sqlite_utils.Database | str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retention: timedelta = DEFAULT_RETENTION,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db if isinstance(db, sqlite_utils.Database) else open_database(db)
        self.max_bytes = max_bytes
        self.retention = retention
        self._clock = clock
        with write_transaction(self.db):  # two connections opening at once must not both migrate
            migrations.apply(self.db)

    def transaction(self) -> AbstractContextManager[sqlite_utils.Database]:
        """The caller's atomic block: BEGIN IMMEDIATE, or a savepoint inside an open transaction."""
        return write_transaction(self.db)

    def enqueue(self, message: WireModel | bytes, topic: str, *, qos: int = 1, retain: bool = False) -> int:
        """Add one event; returns its position. Raises OutboxFull rather than dropping anything."""
        payload = message if isinstance(message, bytes) else to_json(message)
        incident_id, seq = (None, None)
        if isinstance(message, IncidentMessageV1):
            incident_id, seq = str(message.incident_id), message.seq
        with self.transaction():
            self._ensure_room(len(payload) + len(topic) + _ROW_OVERHEAD_BYTES)
            cursor = self.db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain, incident_id, seq, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [topic, payload, qos, int(retain), incident_id, seq, format_utc(self._clock())],
            )
            position = cursor.lastrowid
        assert position is not None  # an INSERT into a rowid table always has one
        return position

    def _ensure_room(self, needed: int) -> None:
        if self.used_bytes() + needed <= self.max_bytes:
            return
        # Acknowledged rows are expendable before their retention ends; the others never are.
        freed = self.db.execute("DELETE FROM outbox WHERE acked_at IS NOT NULL").rowcount
        used = self.used_bytes()
        if used + needed > self.max_bytes:
            log.error(
                "outbox full: %d bytes used of %d, %d unsent events; refusing a %d-byte event",
                used,
                self.max_bytes,
                self.backlog(),
                needed,
            )
            raise OutboxFull(
                f"outbox quota of {self.max_bytes} bytes reached ({used} used by unacknowledged events)"
            )
        log.warning("outbox near quota: pruned %d acknowledged rows early", freed)

    def used_bytes(self) -> int:
        """Pages in use (free pages excluded), i.e. what the rows cost on disk."""
        page_size = self.db.execute("PRAGMA page_size").fetchone()[0]
        page_count = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((page_count - free) * page_size)

    def pending(self, limit: int = 100, after: int = 0) -> list[OutboxRow]:
        """Unsent rows in enqueue order, starting after `after`."""
        rows = self.db.execute(
            "SELECT position, topic, payload, qos, retain, incident_id, seq, created_at FROM outbox"
            " WHERE sent_at IS NULL AND position > ? ORDER BY position LIMIT ?",
            [after, limit],
        ).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]

    def mark_sent(self, positions: Iterable[int], *, acknowledged: bool = False) -> int:
        """Call only for rows whose PUBACK arrived. `acknowledged`: the PUBACK is all this node
        waits for (no end-to-end acknowledgement); otherwise only non-incident rows are done.
        Returns how many rows changed."""
        ids = list(positions)
        if not ids:
            return 0
        sent_at = format_utc(self._clock())
        done_when = "1" if acknowledged else "incident_id IS NULL"
        changed = 0
        with self.transaction():
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                changed += self.db.execute(
                    f"UPDATE outbox SET sent_at = ?, acked_at = CASE WHEN {done_when} THEN ? END"
                    f" WHERE sent_at IS NULL AND position IN ({marks})",
                    [sent_at, sent_at, *chunk],
                ).rowcount
        return changed

    def mark_acked(self, events: Iterable[tuple[str, int]]) -> int:
        """The centre stored these (incident_id, seq) events: their rows may go. Returns how many."""
        at = format_utc(self._clock())
        with self.transaction():
            cursor = self.db.conn.executemany(  # one statement for the whole ack, not one per event
                "UPDATE outbox SET acked_at = ?, sent_at = coalesce(sent_at, ?)"
                " WHERE incident_id = ? AND seq = ? AND acked_at IS NULL",
                [(at, at, incident_id, seq) for incident_id, seq in events],
            )
            return int(cursor.rowcount)

    def resend_unacked(self, older_than: timedelta) -> int:
        """Rows PUBACKed longer than `older_than` ago and still not acknowledged by the centre
        become pending again (the broker lost them, or the centre has not stored them yet)."""
        cutoff = format_utc(self._clock() - older_than)
        with self.transaction():
            return int(
                self.db.execute(
                    "UPDATE outbox SET sent_at = NULL"
                    " WHERE acked_at IS NULL AND sent_at IS NOT NULL AND sent_at < ?",
                    [cutoff],
                ).rowcount
            )

    def backlog(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def unacked(self) -> tuple[int, str | None]:
        """Rows the centre has not acknowledged yet (sent or not), and the oldest one's created_at."""
        count, oldest = self.db.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE acked_at IS NULL"
        ).fetchone()
        return int(count), oldest

    def prune(self) -> int:
        """Delete acknowledged rows older than the retention; returns how many."""
        cutoff = format_utc(self._clock() - self.retention)
        with self.transaction():
            return int(
                self.db.execute(
                    "DELETE FROM outbox WHERE acked_at IS NOT NULL AND acked_at < ?", [cutoff]
                ).rowcount
            )

    def close(self) -> None:
        self.db.close()
