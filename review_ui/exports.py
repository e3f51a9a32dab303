"""Reviewed incidents as training data: a ZIP with a JSONL manifest and the evidence JPEGs.

Rejections are the valuable part (hard negatives for the detector): every verdict is kept in
`verdicts`, and the evidence file the ingest wrote stays in `evidence_dir`, so an export can be
made at any time. One line per verdict:

    {"incident_id", "camera", "zone", "label", "bbox": [x1, y1, x2, y2] (0..1), "verdict",
     "reason", "note", "decided_at", "image": "images/{incident_id}.jpg" | null}
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from review_ui import audit
from review_ui.clock import Clock
from review_ui.db import Store
from review_ui.files import stored_file

MANIFEST = "manifest.jsonl"
SINCE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?$")


class ExportError(Exception):
    """A request the export cannot serve (a malformed `since`)."""


@dataclass(frozen=True)
class ExportSummary:
    verdicts: int
    images: int
    since: str


def check_since(since: str) -> str:
    """'' (everything), a date 'YYYY-MM-DD' or a UTC time 'YYYY-MM-DDTHH:MM[:SS[.ffffff]]Z'."""
    if since and not SINCE.match(since):
        raise ExportError("since must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)")
    return since


def _rows(db: sqlite_utils.Database, since: str) -> list[dict[str, Any]]:
    # verdicts.at is UTC ISO 8601 text, so a date or a shorter stamp compares as a prefix.
    return list(
        db.query(
            "SELECT v.incident_id, i.camera_id, i.zone_id, i.label, i.bbox, i.evidence_path,"
            " v.verdict, v.reason, v.note, v.at FROM verdicts v"
            " JOIN incidents i ON i.incident_id = v.incident_id"
            " WHERE v.at >= ? ORDER BY v.id",
            [since.rstrip("Z")],
        )
    )


def _bbox(text: str | None) -> list[float] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 4 and all(isinstance(v, int | float) for v in value):
        return [float(v) for v in value]
    return None


class VerdictExporter:
    def __init__(self, store: Store, clock: Clock, evidence_dir: Path) -> None:
        self.store = store
        self.clock = clock
        self.evidence_dir = evidence_dir.resolve()

    def write(self, out: IO[bytes], since: str, by: str, ip: str = "") -> ExportSummary:
        """Write the ZIP to `out` (a file opened for binary writing) and audit the export."""
        since = check_since(since)
        rows = _rows(self.store.read(), since)
        images = 0
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            lines: list[str] = []
            written: set[str] = set()
            for row in rows:
                evidence = stored_file(self.evidence_dir, row["evidence_path"])
                image = f"images/{row['incident_id']}.jpg" if evidence is not None else None
                if evidence is not None and image not in written:
                    # JPEGs do not deflate: store them as they are.
                    archive.write(evidence, image, compress_type=zipfile.ZIP_STORED)
                    written.add(str(image))
                    images += 1
                record = {
                    "incident_id": row["incident_id"],
                    "camera": row["camera_id"],
                    "zone": row["zone_id"],
                    "label": row["label"],
                    "bbox": _bbox(row["bbox"]),
                    "verdict": row["verdict"],
                    "reason": row["reason"],
                    "note": row["note"],
                    "decided_at": row["at"],
                    "image": image,
                }
                lines.append(json.dumps(record, ensure_ascii=False))
            archive.writestr(MANIFEST, "".join(line + "\n" for line in lines))
        summary = ExportSummary(len(rows), images, since)
        with self.store.write() as db:
            audit.record(
                db,
                self.clock,
                by,
                "export.verdicts",
                "",
                {"since": since, "verdicts": summary.verdicts, "images": summary.images},
                ip,
            )
        return summary
