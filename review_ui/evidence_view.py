"""The evidence picture on the incident page: its real size, its numbered objects, their close-ups.

The edge burns one box per object into the picture with a number tag (1, 2, ...) and sends
the same objects, in tag order, as `evidence_objects` (curbwatch.incident/3); the ingest keeps
them with the picture they describe. The page draws its boxes over exactly these and names
them in the inspector's language; a close-up is cut from the stored picture itself, so it
shows what the inspector's verdict is about, burnt-in box and all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from uplink.files import jpeg_size

CROP_MARGIN = 0.35  # of the box's size on each side: the object and what it stands on
CROP_MIN_SIDE_PX = 96  # a tiny object still comes with enough surroundings to recognise
CROP_QUALITY = 92  # re-encoding a crop of a JPEG: keep its detail, it is small anyway


class EvidenceUnreadable(ValueError):
    """The stored picture cannot be decoded (a damaged file: the ingest only stores valid ones)."""


@dataclass(frozen=True)
class EvidenceObject:
    """One object as numbered in the evidence picture."""

    number: int  # the tag burnt into the picture
    label: str
    confidence: float
    bbox: tuple[float, float, float, float]  # normalised 0..1 of the picture

    @property
    def svg(self) -> dict[str, str]:
        """x, y, width, height in the 0..1000 units of the page's overlay."""
        x1, y1, x2, y2 = self.bbox
        return {
            "x": f"{x1 * 1000:.1f}",
            "y": f"{y1 * 1000:.1f}",
            "width": f"{(x2 - x1) * 1000:.1f}",
            "height": f"{(y2 - y1) * 1000:.1f}",
        }


def evidence_objects(stored: str | list[Any] | None) -> list[EvidenceObject] | None:
    """The objects of the incidents.evidence_objects column (its JSON text, or that decoded as
    review_ui.queries.incident does); None when the picture came without them."""
    if stored is None or stored == "":
        return None
    try:
        items: Any = json.loads(stored) if isinstance(stored, str) else stored
        return [
            EvidenceObject(
                number=n,
                label=str(item["label"]),
                confidence=float(item["confidence"]),
                bbox=(
                    float(item["bbox"][0]),
                    float(item["bbox"][1]),
                    float(item["bbox"][2]),
                    float(item["bbox"][3]),
                ),
            )
            for n, item in enumerate(items, start=1)
        ]
    except (ValueError, TypeError, KeyError, IndexError):  # written by the ingest; never expected
        return None


def picture_size(path: Path | None) -> tuple[int, int] | None:
    """(width, height) of a stored JPEG from its header, or None when there is none to read."""
    if path is None:
        return None
    try:
        return jpeg_size(path.read_bytes())
    except (OSError, ValueError):
        return None


def crop_box(bbox: tuple[float, float, float, float], size_wh: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel rect (left, top, right, bottom) around a normalised box, grown and kept in the picture."""
    w, h = size_wh
    x1, y1, x2, y2 = bbox[0] * w, bbox[1] * h, bbox[2] * w, bbox[3] * h
    grow_x = max((x2 - x1) * CROP_MARGIN, (CROP_MIN_SIDE_PX - (x2 - x1)) / 2)
    grow_y = max((y2 - y1) * CROP_MARGIN, (CROP_MIN_SIDE_PX - (y2 - y1)) / 2)
    left, top = max(0, int(np.floor(x1 - grow_x))), max(0, int(np.floor(y1 - grow_y)))
    right, bottom = min(w, int(np.ceil(x2 + grow_x))), min(h, int(np.ceil(y2 + grow_y)))
    return left, top, max(right, left + 1), max(bottom, top + 1)


def object_close_up(jpeg: bytes, obj: EvidenceObject) -> bytes:
    """The part of the picture around one object, at the picture's own resolution (never scaled)."""
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise EvidenceUnreadable("the stored evidence picture cannot be decoded")
    h, w = pixels.shape[:2]
    left, top, right, bottom = crop_box(obj.bbox, (w, h))
    crop = np.ascontiguousarray(pixels[top:bottom, left:right])
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, CROP_QUALITY])
    if not ok:
        raise EvidenceUnreadable(f"a close-up of {crop.shape} cannot be encoded")
    return bytes(data.tobytes())
