"""Draw a zone file onto a camera snapshot so a person can check where the zones lie.

OpenCV's Hershey fonts draw ASCII only, so labels use zone and shop ids (ASCII
by the schema) and a name only when it is ASCII; Chinese names show in the
review server's editor, not here.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.types import Image
from zones.schema import Zone, ZoneFile, ZoneKind

# BGR colours: monitored zones red-orange (goods here are reported), exempt green, fixtures yellow.
ZONE_COLOUR_BGR: dict[ZoneKind, tuple[int, int, int]] = {
    ZoneKind.MONITORED: (0, 80, 255),
    ZoneKind.EXEMPT: (60, 200, 60),
}
FIXTURE_COLOUR_BGR = (0, 220, 255)
FILL_OPACITY = 0.25
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _ascii_or_none(text: str | None) -> str | None:
    return text if text and text.isascii() else None


def zone_label(zone: Zone) -> str:
    """'door-12 [shop-12 Fresh Fruit]' for a monitored zone, 'cafe-3 (exempt)' otherwise."""
    if zone.kind is ZoneKind.EXEMPT:
        return f"{zone.id} (exempt)"
    if zone.shop is None:
        return zone.id
    name = _ascii_or_none(zone.shop.name)
    return f"{zone.id} [{zone.shop.id}{' ' + name if name else ''}]"


def _put_label(canvas: Image, text: str, anchor_xy: tuple[int, int], colour: tuple[int, int, int]) -> None:
    scale = max(0.4, canvas.shape[1] / 1600)
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    x = int(np.clip(anchor_xy[0], 0, max(0, canvas.shape[1] - width)))
    y = int(np.clip(anchor_xy[1], height + 2, canvas.shape[0] - baseline))
    cv2.rectangle(canvas, (x, y - height - 2), (x + width, y + baseline), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)


def draw_zones(image: Image, zone_file: ZoneFile) -> Image:
    """A copy of `image` (BGR) with every zone filled, outlined and labelled, and its fixtures boxed."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"draw_zones: expected a (h, w, 3) uint8 BGR image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    scale = np.array([width, height], dtype=np.float64)
    fill = image.copy()
    canvas = image.copy()
    outlines = []
    for zone in zone_file.zones:
        points = np.round(np.asarray(zone.polygon) * scale).astype(np.int32)
        cv2.fillPoly(fill, [points], ZONE_COLOUR_BGR[zone.kind])
        outlines.append((zone, points))
    cv2.addWeighted(fill, FILL_OPACITY, canvas, 1.0 - FILL_OPACITY, 0.0, dst=canvas)
    for zone, points in outlines:
        colour = ZONE_COLOUR_BGR[zone.kind]
        cv2.polylines(canvas, [points], isClosed=True, color=colour, thickness=2, lineType=cv2.LINE_AA)
        for fixture in zone.fixtures:
            x1, y1, x2, y2 = np.round(np.asarray(fixture.box) * np.tile(scale, 2)).astype(int)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), FIXTURE_COLOUR_BGR, 1, cv2.LINE_AA)
            _put_label(canvas, f"fixture: {fixture.class_name}", (x1, y1 - 3), FIXTURE_COLOUR_BGR)
        top_left = points[np.argmin(points[:, 1] * width + points[:, 0])]
        _put_label(canvas, zone_label(zone), (int(top_left[0]), int(top_left[1]) - 4), colour)
    _put_label(
        canvas, f"camera {zone_file.camera_id}: {len(zone_file.zones)} zones", (4, 16), (255, 255, 255)
    )
    return canvas
