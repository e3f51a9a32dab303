"""Named, ordered schema migrations for both engines.

SQLite keeps sqlite-utils' migration table (`_sqlite_migrations`), so every existing review
database carries on. A new PostgreSQL database starts from a baseline script: the schema the
SQLite migrations had built by `baseline_through`, written once in PostgreSQL's types; the
migrations after it run on both engines, from the same function (branching on `db.dialect`
where the DDL differs), and are recorded in `schema_migrations`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from uplink.database.connection import Database, SqliteDatabase

MigrationFunction = TypeVar("MigrationFunction", bound=Callable[[Any], None])


@dataclass(frozen=True)
class _Migration:
    name: str
    run: Callable[[Any], None]


class Migrations:
    def __init__(self, name: str, *, postgres_baseline: Path, baseline_through: str) -> None:
        self.name = name
        self.postgres_baseline = postgres_baseline
        self.baseline_through = baseline_through
        self._sqlite = sqlite_utils.Migrations(name)
        self._migrations: list[_Migration] = []

    def __call__(self) -> Callable[[MigrationFunction], MigrationFunction]:
        def register(function: MigrationFunction) -> MigrationFunction:
            self._sqlite()(function)
            self._migrations.append(_Migration(function.__name__, function))
            return function

        return register

    def apply(self, db: Database) -> None:
        """Inside the caller's write transaction (or one per migration on SQLite)."""
        if isinstance(db, SqliteDatabase):
            self._sqlite.apply(db)
            return
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (migration_set TEXT NOT NULL,"
            " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))"
        )
        applied = {
            row[0]
            for row in db.execute("SELECT name FROM schema_migrations WHERE migration_set = ?", [self.name])
        }
        names = [migration.name for migration in self._migrations]
        if self.baseline_through not in names:
            raise ValueError(f"{self.name}: baseline_through {self.baseline_through!r} is no migration")
        after_baseline = names.index(self.baseline_through) + 1
        if not applied:
            db.executescript(self.postgres_baseline.read_text(encoding="utf-8"))
            for name in names[:after_baseline]:
                self._record(db, name)
            applied = set(names[:after_baseline])
        for migration in self._migrations[after_baseline:]:
            if migration.name not in applied:
                with db.atomic():
                    migration.run(db)
                    self._record(db, migration.name)

    def _record(self, db: Database, name: str) -> None:
        db.execute(
            "INSERT INTO schema_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
            [self.name, name, datetime.now(UTC).isoformat()],
        )
