"""Reviewed incidents as training data: a ZIP with a JSONL manifest, the evidence JPEGs, and the
same material in YOLO format for people who train elsewhere.

Rejections are the valuable part (hard negatives for the detector): every verdict is kept in
`verdicts`, and the evidence file the ingest wrote stays in `evidence_dir`, so an export can be
made at any time. One line per verdict (fields are only ever added, never renamed):

    {"incident_id", "camera", "zone", "label", "bbox": [x1, y1, x2, y2] (0..1), "verdict",
     "reason", "note", "decided_at", "image": "images/{incident_id}.jpg" | null,
     "first_seen_at", "image_wh": [w, h] | null,
     "objects": [{"label", "confidence", "bbox"}] as numbered in the picture | null,
     "label_file": "labels/{incident_id}.txt" | null, "crops": ["crops/..."]}

Beside `images/` the ZIP holds `labels/{incident_id}.txt` (YOLO: one `class cx cy w h` line per
confirmed box, class indices per `data.yaml`'s names; an empty file for a rejected picture, a
background image) and `crops/{verdict}/{label}/{incident_id}-{n}.jpg` (the close-up of each box,
as the review page shows it). The pictures are the evidence as sent: boxes and number tags are
burnt in (the edge keeps no clean frame), which docs/review.md names as a training limitation.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from review_ui import audit
from review_ui.clock import Clock
from review_ui.db import Store
from review_ui.evidence_view import EvidenceObject, EvidenceUnreadable, evidence_objects, object_close_up
from review_ui.files import stored_file
from uplink.database import Database
from uplink.files import jpeg_size

MANIFEST = "manifest.jsonl"
DATA_YAML = "data.yaml"
SINCE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?$")
UNSAFE_IN_FOLDER_NAME = re.compile(r"[^\w.-]+")  # labels are free text; a crop folder is not


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


def _rows(db: Database, since: str) -> list[dict[str, Any]]:
    # verdicts.at is UTC ISO 8601 text, so a date or a shorter stamp compares as a prefix.
    return list(
        db.query(
            "SELECT v.incident_id, i.camera_id, i.zone_id, i.label, i.confidence, i.bbox,"
            " i.evidence_path, i.evidence_objects, i.first_seen_at,"
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


def _boxes(row: dict[str, Any], drawn: list[EvidenceObject] | None) -> list[EvidenceObject]:
    """The boxes a verdict judges: those numbered in the picture, else (pictures from nodes before
    curbwatch.incident/3) the incident's own label and box."""
    if drawn is not None:
        return drawn
    bbox = _bbox(row["bbox"])
    if bbox is None:
        return []
    return [EvidenceObject(1, row["label"], float(row["confidence"]), (bbox[0], bbox[1], bbox[2], bbox[3]))]


def yolo_line(class_index: int, bbox: tuple[float, float, float, float]) -> str | None:
    """`class cx cy w h` (0..1) for a normalised xyxy box, clipped to the picture; None if empty."""
    x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in bbox)
    if x2 <= x1 or y2 <= y1:
        return None
    return f"{class_index} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"


def _data_yaml(names: list[str]) -> str:
    # JSON strings are YAML strings: any label (spaces, Chinese, quotes) reads back as written.
    listed = "\n".join(
        f"  {index}: {json.dumps(name, ensure_ascii=False)}" for index, name in enumerate(names)
    )
    return (
        "# YOLO dataset: images/ and labels/ beside this file (an empty label file: a rejected\n"
        "# picture, kept as background). No split here: `curbwatch models train` holds out whole\n"
        "# camera-days. The pictures have the edge's boxes and number tags burnt in.\n"
        "train: images\nval: images\nnames:" + (f"\n{listed}\n" if names else " {}\n")
    )


def _size(jpeg: bytes) -> list[int] | None:
    try:
        return list(jpeg_size(jpeg))
    except ValueError:  # the ingest stores valid JPEGs only; a file damaged since then has no size
        return None


class _YoloMaterial:
    """Label files per picture (the last verdict of an incident decides) and the names they use."""

    def __init__(self) -> None:
        self._judged: dict[str, tuple[str, list[EvidenceObject]]] = {}

    def judge(self, incident_id: str, verdict: str, boxes: list[EvidenceObject]) -> str:
        self._judged[incident_id] = (verdict, boxes)
        return f"labels/{incident_id}.txt"

    def write(self, archive: zipfile.ZipFile) -> None:
        names = sorted(
            {b.label for verdict, boxes in self._judged.values() if verdict == "confirmed" for b in boxes}
        )
        index = {name: n for n, name in enumerate(names)}
        for incident_id, (verdict, boxes) in self._judged.items():
            lines = [yolo_line(index[b.label], b.bbox) for b in boxes] if verdict == "confirmed" else []
            archive.writestr(f"labels/{incident_id}.txt", "".join(f"{line}\n" for line in lines if line))
        archive.writestr(DATA_YAML, _data_yaml(names))


def _crops(
    archive: zipfile.ZipFile, jpeg: bytes, incident_id: str, verdict: str, boxes: list[EvidenceObject]
) -> list[str]:
    names: list[str] = []
    for n, box in enumerate(boxes, start=1):
        folder = UNSAFE_IN_FOLDER_NAME.sub("_", box.label).strip("._") or "object"
        name = f"crops/{verdict}/{folder}/{incident_id}-{n}.jpg"
        try:
            archive.writestr(name, object_close_up(jpeg, box), compress_type=zipfile.ZIP_STORED)
        except EvidenceUnreadable:
            return names  # a damaged picture: the manifest still lists the verdict
        names.append(name)
    return names


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
            crops: dict[tuple[str, str], list[str]] = {}  # an incident decided twice: its crops once
            yolo = _YoloMaterial()
            for row in rows:
                incident_id = row["incident_id"]
                evidence = stored_file(self.evidence_dir, row["evidence_path"])
                image = f"images/{incident_id}.jpg" if evidence is not None else None
                drawn = evidence_objects(row["evidence_objects"]) if evidence is not None else None
                jpeg = evidence.read_bytes() if evidence is not None else b""
                if image is not None and image not in written:
                    # JPEGs do not deflate: store them as they are.
                    archive.writestr(image, jpeg, compress_type=zipfile.ZIP_STORED)
                    written.add(image)
                    images += 1
                boxes = _boxes(row, drawn) if image is not None else []
                if image is not None and (incident_id, row["verdict"]) not in crops:
                    crops[incident_id, row["verdict"]] = _crops(
                        archive, jpeg, incident_id, row["verdict"], boxes
                    )
                record = {
                    "incident_id": incident_id,
                    "camera": row["camera_id"],
                    "zone": row["zone_id"],
                    "label": row["label"],
                    "bbox": _bbox(row["bbox"]),
                    "verdict": row["verdict"],
                    "reason": row["reason"],
                    "note": row["note"],
                    "decided_at": row["at"],
                    "image": image,
                    "first_seen_at": row["first_seen_at"],
                    "image_wh": _size(jpeg) if image is not None else None,
                    "objects": None
                    if drawn is None
                    else [
                        {"label": o.label, "confidence": o.confidence, "bbox": list(o.bbox)} for o in drawn
                    ],
                    "label_file": yolo.judge(incident_id, row["verdict"], boxes) if image else None,
                    "crops": crops.get((incident_id, row["verdict"]), []),
                }
                lines.append(json.dumps(record, ensure_ascii=False))
            yolo.write(archive)
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
