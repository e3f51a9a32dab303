"""One connection to the review database, with the same methods on both engines.

SQLite: sqlite-utils' Database (what the code has always used) plus `dialect` and
`transaction()`. PostgreSQL: psycopg 3 behind the few methods the code uses (execute, query,
executescript, table_names, atomic, transaction, close); `?` and `:name` become psycopg's
`%s` and `%(name)s`.

A write transaction is one writer at a time on both engines: BEGIN IMMEDIATE on SQLite, a
transaction-scoped advisory lock on PostgreSQL. Read-then-write code (a verdict checks the
workflow row, then writes it; the ingest compares seq) is then correct across processes
without per-statement retries, and incidents get their `rowid` in commit order, which the
case assigner's watermark relies on. Reads never wait for it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlite_utils

from uplink.database.url import DatabaseUrl, parse_url

Parameters = Sequence[Any] | dict[str, Any] | None
BUSY_TIMEOUT_MS = 10_000
WRITE_LOCK_KEY = 0x6375726277  # "curbw": the advisory lock every writer of a database takes


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]: ...

    def execute(self, sql: str, parameters: Parameters = None) -> Cursor: ...

    def query(self, sql: str, params: Parameters = None) -> Iterator[dict[str, Any]]: ...

    def executescript(self, sql: str) -> Any: ...

    def table_names(self) -> list[str]: ...

    def atomic(self) -> AbstractContextManager[Any]:
        """A savepoint inside a transaction; its own transaction outside one."""
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """The write transaction (one writer at a time); a savepoint when one is open."""
        ...

    def close(self) -> None: ...


class SqliteDatabase(sqlite_utils.Database):
    dialect: Literal["sqlite"] = "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[SqliteDatabase]:
        """BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout): a
        deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
        another connection committed in between."""
        if self.conn.in_transaction:
            with self.atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.execute("COMMIT")


def open_sqlite(path: str | Path, *, synchronous: str = "FULL") -> SqliteDatabase:
    """WAL, so readers never block the writer; FULL by default: the ingest promises the broker
    (and the edge) that what it acknowledged is stored, power loss included."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    db = SqliteDatabase(conn)
    if db.journal_mode != "wal":
        db.enable_wal()
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


# A quoted literal or identifier is copied as is; outside them `?`, `:name` and `%` are rewritten.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|:([A-Za-z_]\w*)|\?|%")


@lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """`?` -> `%s`, `:name` -> `%(name)s`, `%` -> `%%` (the SQL is ours, never user input)."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return token

    return _TOKENS.sub(swap, sql)


def _without_nul(parameters: Sequence[Any] | dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
    """PostgreSQL text cannot hold NUL (SQLite's can): a NUL from hostile input becomes U+FFFD,
    as a decoder marks a broken character, instead of failing the statement. It matches no
    stored text, so a lookup still finds nothing."""

    def clean(value: Any) -> Any:
        return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value

    if isinstance(parameters, dict):
        return {key: clean(value) for key, value in parameters.items()}
    return [clean(value) for value in parameters]


class PostgresDatabase:
    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg  # the centre's extra ([review]); a SQLite box never imports it
        from psycopg.types.numeric import FloatLoader

        self.conn = psycopg.connect(url, autocommit=True)
        # sum() and avg() are numeric in PostgreSQL: floats here, as SQLite gives
        self.conn.adapters.register_loader("numeric", FloatLoader)
        self._psycopg = psycopg

    def execute(self, sql: str, parameters: Parameters = None) -> Cursor:
        if not parameters:
            return self.conn.execute(sql)
        return self.conn.execute(to_psycopg(sql), _without_nul(parameters))

    def query(self, sql: str, params: Parameters = None) -> Iterator[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self.conn.cursor(row_factory=dict_row) as cursor:
            if params:
                cursor.execute(to_psycopg(sql), _without_nul(params))
            else:
                cursor.execute(sql)
            yield from cursor.fetchall()

    def executescript(self, sql: str) -> None:
        self.conn.execute(sql)  # no parameters: several statements run

    def table_names(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        ).fetchall()
        return [row[0] for row in rows]

    @contextmanager
    def atomic(self) -> Iterator[PostgresDatabase]:
        with self.conn.transaction():
            yield self

    @contextmanager
    def transaction(self) -> Iterator[PostgresDatabase]:
        idle = self.conn.info.transaction_status == self._psycopg.pq.TransactionStatus.IDLE
        with self.conn.transaction():
            if idle:
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK_KEY])
            yield self

    def close(self) -> None:
        self.conn.close()


def open_database(where: str | Path | DatabaseUrl, *, synchronous: str = "FULL") -> Database:
    """A path or sqlite:/// URL opens SQLite; a postgresql:// URL connects to PostgreSQL."""
    url = where if isinstance(where, DatabaseUrl) else parse_url(where)
    if url.dialect == "postgresql":
        return PostgresDatabase(url.target)
    return open_sqlite(url.path, synchronous=synchronous)
