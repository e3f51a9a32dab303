"""Crash-safe file writes for evidence and snapshots."""

from __future__ import annotations

import os
from pathlib import Path

JPEG_MAGIC = b"\xff\xd8\xff"


def write_atomic(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a reader (or a restart) sees the old file or the new one, never half.
    The fsync matters because the ingest acknowledges the message once its row commits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
