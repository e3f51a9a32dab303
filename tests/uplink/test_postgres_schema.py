"""The PostgreSQL baseline scripts build what the SQLite migrations build: same tables, columns
in the same order, same primary keys, same indexes (uplink.database.migrations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from review_ui.migrations import migrate
from tests.support.database import columns, new_postgres_database, primary_key, url_of
from uplink.database import Database, open_database
from uplink.review_db import open_review_database

MIGRATION_TABLES = {"_sqlite_migrations", "schema_migrations"}


def build(where: str) -> Database:
    db = open_review_database(where)
    migrate(db)
    return db


def index_names(db: Database) -> set[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'"
    else:  # the implicit indexes of primary keys and UNIQUE constraints are left out
        sql = (
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            " AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'"
        )
    return {row[0] for row in db.execute(sql)} - {"idx__sqlite_migrations_migration_set_name"}


def shape(db: Database) -> dict[str, Any]:
    tables = sorted(set(db.table_names()) - MIGRATION_TABLES)
    return {
        "tables": {name: (columns(db, name), primary_key(db, name)) for name in tables},
        "indexes": index_names(db),
    }


def test_postgres_has_the_schema_the_sqlite_migrations_build(tmp_path: Path) -> None:
    sqlite = build(str(tmp_path / "review.db"))
    postgres = build(url_of(new_postgres_database()))
    try:
        assert shape(postgres) == shape(sqlite)
    finally:
        sqlite.close()
        postgres.close()


def test_migrating_twice_changes_nothing_on_postgres() -> None:
    url = url_of(new_postgres_database())
    build(url).close()
    again = build(url)
    try:
        rows = again.execute("SELECT migration_set, count(*) FROM schema_migrations GROUP BY 1 ORDER BY 1")
        assert [tuple(row) for row in rows] == [("curbwatch.uplink.review", 5), ("review_ui", 11)]
        assert again.execute("SELECT last_rowid FROM case_progress").fetchone()[0] == 0
    finally:
        again.close()


def test_a_database_url_with_a_password_is_refused_in_the_config() -> None:
    from review_ui.config import ReviewConfig

    with pytest.raises(ValueError, match="PGPASSWORD"):
        ReviewConfig.model_validate(
            {
                "database_url": "postgresql://curbwatch:secret@db.example/curbwatch",
                "evidence_dir": "e",
                "secret_key_file": "k",
            }
        )


def test_an_unknown_database_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite:///path or postgresql://"):
        open_database("mysql://db.example/curbwatch")
