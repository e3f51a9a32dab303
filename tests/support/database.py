"""The review database the tests run on: SQLite files, or PostgreSQL when asked.

    CURBWATCH_TEST_DATABASE=postgresql pytest tests/review_ui tests/uplink

runs the same tests with every review database on the PostgreSQL server at
CURBWATCH_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres), each test on
a database of its own (created from a template where it starts with users), dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENGINE = os.environ.get("CURBWATCH_TEST_DATABASE", "sqlite")
SERVER = os.environ.get("CURBWATCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
if ENGINE not in ("sqlite", "postgresql"):
    raise RuntimeError(f"CURBWATCH_TEST_DATABASE must be sqlite or postgresql, got {ENGINE!r}")

_created: list[str] = []
_by_folder: dict[Path, str] = {}


def on_postgres() -> bool:
    return ENGINE == "postgresql"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def url_of(name: str) -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + name


def new_postgres_database() -> str:
    """An empty database; its name. C collation: text sorts as bytes, as on SQLite."""
    name = f"cw_test_{uuid.uuid4().hex[:16]}"
    _admin(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
    _created.append(name)
    return name


def database_for(folder: Path) -> dict[str, object]:
    """The config keys of the review database for a test folder: one per folder."""
    if not on_postgres():
        return {"db_path": folder / "review.db"}
    if folder not in _by_folder:
        _by_folder[folder] = new_postgres_database()
    return {"db_path": None, "database_url": url_of(_by_folder[folder])}


@dataclass(frozen=True)
class UsersTemplate:
    """A migrated database with the test users: a SQLite file, or a PostgreSQL database."""

    path: Path | None = None
    postgres: str | None = None

    def seed(self, config: object) -> None:
        """Start `config`'s review database as a copy of this one (before anything opens it)."""
        database = config.database  # type: ignore[attr-defined]
        if self.path is not None:
            shutil.copyfile(self.path, database.path)
            return
        assert self.postgres is not None
        name = database.target.rsplit("/", 1)[1]
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _admin(f"CREATE DATABASE {name} TEMPLATE {self.postgres}")


def drop_all() -> None:
    for name in _created:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _created.clear()
    _by_folder.clear()


def review_db_for(folder: Path) -> str:
    """The review database of a test folder, for open_review_database / IngestService."""
    keys = database_for(folder)
    return str(keys["database_url"] if on_postgres() else keys["db_path"])


def columns(db: Any, table: str) -> list[str]:
    """A table's columns in order, on either engine; PostgreSQL's explicit `rowid` (SQLite's is
    implicit) left out."""
    if db.dialect == "sqlite":
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    rows = db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = ? ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in rows if row[0] != "rowid"]


def primary_key(db: Any, table: str) -> list[str]:
    if db.dialect == "sqlite":
        found = sorted((row[5], row[1]) for row in db.execute(f"PRAGMA table_info({table})") if row[5])
        return [name for _, name in found]
    rows = db.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = ?::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey, a.attnum)",
        [table],
    )
    return [row[0] for row in rows]


def one_row(db: Any, table: str, **key: object) -> dict[str, Any]:
    """The row with these key values (raises when there is none)."""
    where = " AND ".join(f"{name} = ?" for name in key)
    found = next(db.query(f"SELECT * FROM {table} WHERE {where}", list(key.values())), None)
    if found is None:
        raise LookupError(f"no {table} row with {key}")
    found.pop("rowid", None)
    return dict(found)
