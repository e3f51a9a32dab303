"""Connections to the review database: one writer (serialised by a lock), readers per thread.

The uplink ingest writes incidents from its own connection (on SQLite: WAL mode and a busy
timeout let both writers take turns; on PostgreSQL: the advisory write lock of
uplink.database). Every multi-statement write here runs inside `Store.write()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from uplink.database import Database, DatabaseUrl, open_database, parse_url


class Store:
    """The review database: `write()` gives the single writer inside a transaction, `read()` a
    per-thread reader connection."""

    def __init__(self, where: str | Path | DatabaseUrl) -> None:
        self.url = where if isinstance(where, DatabaseUrl) else parse_url(where)
        self._writer = open_database(self.url)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Database] = []
        self._readers_lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One writer at a time across every process on the database (uplink.database)."""
        with self._write_lock, self._writer.transaction():
            yield self._writer

    @contextmanager
    def writer_unlocked(self) -> Iterator[Database]:
        """The writer without a transaction: for migrations, which make their own."""
        with self._write_lock:
            yield self._writer

    def read(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = open_database(self.url)
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
