"""Files the ingest stored under the evidence dir, found by the relative path in the database."""

from __future__ import annotations

from pathlib import Path


def stored_file(root: Path, relative: str | None) -> Path | None:
    """`relative` resolved under `root`, only if it stays inside `root` and is a file.

    The path comes from the database, never from a request; the check still refuses
    anything that would escape the evidence dir.
    """
    if not relative:
        return None
    candidate = (root.resolve() / relative).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    return candidate
