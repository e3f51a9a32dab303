"""SQLite conventions shared by the edge outbox and the review database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import sqlite_utils

Synchronous = Literal["FULL", "NORMAL"]


def open_database(path: str | Path, *, synchronous: Synchronous = "FULL") -> sqlite_utils.Database:
    """WAL, so readers (publisher, review UI) never block the writer. FULL by default: in WAL,
    NORMAL may lose the last commits on power loss (never on a process crash), and both the
    edge outbox and the ingest promise durability to someone (the edge's logic, the broker)."""
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=True)
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout): a deferred
    transaction that reads and then writes fails at once with SQLITE_BUSY when another
    connection committed in between. Inside an open transaction it is a savepoint."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.conn.execute("COMMIT")
