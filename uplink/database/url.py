"""Where the review database is: a SQLite file or a PostgreSQL server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class DatabaseUrl:
    dialect: Dialect
    target: str  # the file path (sqlite) or the libpq URL (postgresql)

    @property
    def path(self) -> Path:
        if self.dialect != "sqlite":
            raise ValueError(f"{self} is not a SQLite file")
        return Path(self.target)

    def __str__(self) -> str:
        return f"sqlite:///{self.target}" if self.dialect == "sqlite" else _without_password(self.target)


def parse_url(where: str | Path) -> DatabaseUrl:
    """`postgresql://user@host:5432/db` (or `postgres://`), `sqlite:///relative/or/absolute` or a
    plain path (SQLite)."""
    text = str(where)
    if text.startswith(("postgresql://", "postgres://")):
        return DatabaseUrl("postgresql", text)
    if text.startswith("sqlite:///"):
        return DatabaseUrl("sqlite", text.removeprefix("sqlite:///"))
    if "://" in text:
        raise ValueError(
            f"database URL must be sqlite:///path or postgresql://..., got {text.split('://')[0]}://"
        )
    return DatabaseUrl("sqlite", text)


def _without_password(url: str) -> str:
    """For logs and errors: the password never leaves the config."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':')[0]}:***@{host}"
