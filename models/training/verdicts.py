"""The verdict export (review_ui.exports) read back: one judged picture per incident.

Only `manifest.jsonl` and the pictures it names are read, so exports made before the YOLO
material was added train too. The last verdict of an incident decides, as in the export's labels.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"
INCIDENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # becomes a file name in the dataset
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


class TrainingError(Exception):
    """The export, the base model or the training cannot give a model: one line for the user."""


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@dataclass(frozen=True)
class JudgedBox:
    label: str
    bbox: tuple[float, float, float, float]  # normalised 0..1 xyxy of the picture


@dataclass(frozen=True)
class JudgedPicture:
    """An evidence picture and the boxes an inspector confirmed or rejected in it."""

    incident_id: str
    camera: str
    day: str  # UTC date the incident was first seen (decided, for exports without first_seen_at)
    verdict: Verdict
    boxes: tuple[JudgedBox, ...]
    image_name: str  # inside the ZIP

    @property
    def camera_day(self) -> tuple[str, str]:
        return self.camera, self.day


def _box(value: Any) -> tuple[float, float, float, float] | None:
    if not (isinstance(value, list) and len(value) == 4):
        return None
    if not all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in value):
        return None
    x1, y1, x2, y2 = (float(v) for v in value)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _boxes(record: dict[str, Any]) -> tuple[JudgedBox, ...]:
    """The numbered objects of the picture; for pictures without them, the incident's own box."""
    objects = record.get("objects")
    items = (
        objects if isinstance(objects, list) else [{"label": record.get("label"), "bbox": record.get("bbox")}]
    )
    boxes = []
    for item in items:
        box = _box(item.get("bbox")) if isinstance(item, dict) else None
        label = item.get("label") if isinstance(item, dict) else None
        if box is not None and isinstance(label, str) and label:
            boxes.append(JudgedBox(label, box))
    return tuple(boxes)


def _records(archive: zipfile.ZipFile, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = archive.read(MANIFEST).decode("utf-8")
    except KeyError:
        raise TrainingError(f"{where}: not a verdict export (no {MANIFEST})") from None
    except UnicodeDecodeError as error:
        raise TrainingError(f"{where}: {MANIFEST} is not UTF-8 ({error})") from error
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise TrainingError(f"{where}: {MANIFEST} line {number} is not JSON ({error})") from error
        if not isinstance(record, dict):
            raise TrainingError(f"{where}: {MANIFEST} line {number} is not a JSON object")
        yield number, record


def _picture(
    archive: zipfile.ZipFile, where: str, number: int, record: dict[str, Any]
) -> JudgedPicture | None:
    """None for a verdict there is nothing to learn from: no picture, no box, undecided."""
    image, verdict = record.get("image"), record.get("verdict")
    boxes = _boxes(record)
    if not isinstance(image, str) or verdict not in set(Verdict) or not boxes:
        return None
    incident_id, camera = record.get("incident_id"), record.get("camera")
    if not isinstance(incident_id, str) or not INCIDENT_ID.match(incident_id) or not isinstance(camera, str):
        raise TrainingError(f"{where}: {MANIFEST} line {number}: incident_id or camera missing or malformed")
    if image not in archive.NameToInfo:
        raise TrainingError(f"{where}: {MANIFEST} line {number} names {image}, which the ZIP does not hold")
    stamp = record.get("first_seen_at") or record.get("decided_at")
    if not isinstance(stamp, str) or not DAY.match(stamp):
        raise TrainingError(f"{where}: {MANIFEST} line {number}: no first_seen_at or decided_at date")
    return JudgedPicture(incident_id, camera, stamp[:10], Verdict(verdict), boxes, image)


def read_export(path: Path) -> list[JudgedPicture]:
    """The judged pictures of an export, in decision order; TrainingError for anything else."""
    if not path.is_file():
        raise TrainingError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise TrainingError(f"{path}: not a ZIP file (expected a verdict export)")
    with zipfile.ZipFile(path) as archive:
        latest: dict[str, JudgedPicture] = {}
        for number, record in _records(archive, str(path)):
            picture = _picture(archive, str(path), number, record)
            if picture is not None:
                latest.pop(picture.incident_id, None)  # re-decided: the newest verdict, in its place
                latest[picture.incident_id] = picture
    if not latest:
        raise TrainingError(
            f"{path}: the export holds no confirmed or rejected verdict with a picture and a box"
        )
    return list(latest.values())
