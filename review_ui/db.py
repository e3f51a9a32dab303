"""Connections to the review database: one writer (serialised by a lock), readers per thread.

The uplink ingest writes incidents from its own connection; WAL mode and a busy timeout let
both writers take turns. Every multi-statement write here runs inside `Store.write()`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from uplink.sqlite import write_transaction

BUSY_TIMEOUT_MS = 10_000


def connect(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    if db.journal_mode != "wal":
        db.enable_wal()
    return db


class Store:
    """The review database: `write()` gives the single writer inside a transaction, `read()` a
    per-thread reader connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = connect(path)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite_utils.Database] = []
        self._readers_lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE (uplink.sqlite.write_transaction): a deferred transaction that reads
        then writes fails with "database is locked" when the ingest committed in between."""
        with self._write_lock, write_transaction(self._writer):
            yield self._writer

    @contextmanager
    def writer_unlocked(self) -> Iterator[sqlite_utils.Database]:
        """The writer without a transaction: for migrations, which make their own."""
        with self._write_lock:
            yield self._writer

    def read(self) -> sqlite_utils.Database:
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    def close(self) -> None:
        with self._readers_lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()
