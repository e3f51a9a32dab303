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


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header; ValueError says what is wrong with it.

    Walks the marker segments only, decodes nothing: cheap enough for every page view.
    """
    if not data.startswith(JPEG_MAGIC):
        raise ValueError("no JPEG signature (FF D8 FF)")
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError("broken JPEG segment structure")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if position + 9 > len(data):
                raise ValueError("truncated frame header")
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header
            raise ValueError("no frame header before the image data")
        position += 2 + length
    raise ValueError("no frame header")
