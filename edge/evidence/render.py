"""Evidence pictures for an incident: annotated overview and a clean crop, people blurred.

Everything that leaves the edge box passes through `render_evidence`: the
people in the frame (PEOPLE_CLASSES boxes, slightly enlarged) are pixelated
first, the upper part of each person box (where the face is) more coarsely
still, then every face a face detector found (a person the detector missed, a
poster, a reflection), and only then is anything drawn or cropped, so no path
leads to an unblurred person.

Each object is drawn once (edge.evidence.tags.one_per_object) with a number tag
(1, 2, ...) placed clear of every other tag; `Evidence.objects` lists them in
number order, so the review page can name them in the inspector's language and
draw its own boxes over exactly these. Pictures keep the frame's resolution:
nothing is ever scaled up, only down to EvidencePolicy.max_long_side_px.

When the scene model knows the clean background, a second picture shows the
zone as it looked before (BEFORE) beside the same area now (NOW), people and
faces blurred in both, so an inspector sees what is new.

The function is pure: it copies the frame and never writes to its input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import cv2
import numpy as np

from edge.evidence.tags import Rect, one_per_object, place_tags
from models.classes import PEOPLE_CLASSES
from models.types import Detections, Image

ZONE_COLOUR = (0, 200, 255)  # BGR amber
BOX_COLOUR = (0, 0, 255)
TEXT_COLOUR = (255, 255, 255)
TAG_PAD_PX = 3  # around the number inside its tag
FACE_MARGIN = 0.35  # a face box grown by this share per side covers hair, ears and chin
STRIP_GAP_PX = 6  # between the BEFORE and NOW halves


class EvidenceObject(Protocol):
    """What evidence needs of an incident's object (IncidentEvent.objects items)."""

    @property
    def label(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    @property
    def xyxy(self) -> Sequence[float]: ...


@dataclass(frozen=True)
class EvidencePolicy:
    """Size bounds and privacy strength of evidence pictures.

    person_margin enlarges each person box by that fraction of its size on
    every side, so a slightly short box still covers hair and shoes.
    face_fraction is the upper part of a person box treated as the face.
    """

    max_long_side_px: int = 1280
    max_bytes: int = 200_000
    quality_steps: tuple[int, ...] = (90, 80, 70, 60, 50, 40, 30, 20)
    crop_margin: float = 0.25
    crop_min_side_px: int = 96
    person_margin: float = 0.08
    face_fraction: float = 0.3
    body_cells: int = 8  # pixelation cells across the shorter side of a person box
    face_cells: int = 3  # cells across the face region: nothing recognisable survives


BEFORE_NOW_POLICY = EvidencePolicy(max_long_side_px=960, max_bytes=120_000)


@dataclass(frozen=True)
class DrawnObject:
    """An object as drawn in the annotated picture; its tag number is its place in the list + 1."""

    label: str
    confidence: float
    bbox: tuple[float, float, float, float]  # normalised 0..1 of the picture, clipped to it


@dataclass(frozen=True)
class Evidence:
    """JPEG bytes ready to embed in an incident message."""

    annotated_jpeg: bytes
    crop_jpeg: bytes
    content_type: str = "image/jpeg"
    before_now_jpeg: bytes | None = None  # the zone before (clean background) | now, side by side
    objects: tuple[DrawnObject, ...] = ()  # the boxes of annotated_jpeg, tag 1 first

    @property
    def annotated_sha256(self) -> str:
        return hashlib.sha256(self.annotated_jpeg).hexdigest()


def _to_ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only; anything else becomes '?'."""
    return text.encode("ascii", "replace").decode("ascii")


def _person_boxes(detections: Detections, resolution_wh: tuple[int, int], margin: float) -> np.ndarray:
    """Person boxes enlarged by margin and clipped to the frame, as int (n, 4)."""
    people = detections[detections.class_mask(PEOPLE_CLASSES)]
    return _grown_boxes(people.xyxy, resolution_wh, margin)


def _grown_boxes(boxes: np.ndarray, resolution_wh: tuple[int, int], margin: float) -> np.ndarray:
    if not len(boxes):
        return np.zeros((0, 4), dtype=np.int64)
    xyxy = np.asarray(boxes, np.float64).reshape(-1, 4)
    size = np.stack([xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], axis=1)
    grown = xyxy + np.concatenate([-size, size], axis=1) * margin
    w, h = resolution_wh
    grown[:, [0, 2]] = np.clip(grown[:, [0, 2]], 0, w)
    grown[:, [1, 3]] = np.clip(grown[:, [1, 3]], 0, h)
    return np.round(grown).astype(np.int64)


def _pixelate(region: Image, cells_across_short_side: int) -> Image:
    """Average the region into coarse cells, then smooth them back up (no sharp cell edges)."""
    h, w = region.shape[:2]
    cell = max(1, min(w, h) // max(1, cells_across_short_side))
    small = cv2.resize(region, (max(1, w // cell), max(1, h // cell)), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    kernel = max(3, (cell // 2) * 2 + 1)
    return np.ascontiguousarray(cv2.GaussianBlur(up, (kernel, kernel), 0))


def blur_faces(pixels: Image, faces: Detections, policy: EvidencePolicy | None = None) -> Image:
    """A copy of pixels with every face box (grown by a third) pixelated coarsely."""
    policy = policy or EvidencePolicy()
    out = pixels.copy()
    h, w = pixels.shape[:2]
    for x1, y1, x2, y2 in _grown_boxes(faces.xyxy, (w, h), FACE_MARGIN):
        if x2 > x1 and y2 > y1:
            out[y1:y2, x1:x2] = _pixelate(out[y1:y2, x1:x2], policy.face_cells)
    return out


def blur_people(
    pixels: Image,
    detections: Detections,
    policy: EvidencePolicy | None = None,
    faces: Detections | None = None,
) -> Image:
    """A copy of pixels with every person box pixelated, its face part even more so, then every face."""
    policy = policy or EvidencePolicy()
    if faces is not None and len(faces):
        pixels = blur_faces(pixels, faces, policy)
    out = pixels.copy()
    h, w = pixels.shape[:2]
    boxes = [
        b for b in _person_boxes(detections, (w, h), policy.person_margin) if b[2] > b[0] and b[3] > b[1]
    ]
    # Bodies first, faces last: a neighbour's body pass must not overwrite a face with finer cells.
    for x1, y1, x2, y2 in boxes:
        out[y1:y2, x1:x2] = _pixelate(out[y1:y2, x1:x2], policy.body_cells)
    for x1, y1, x2, y2 in boxes:
        face_bottom = y1 + max(1, round((y2 - y1) * policy.face_fraction))
        out[y1:face_bottom, x1:x2] = _pixelate(out[y1:face_bottom, x1:x2], policy.face_cells)
    if faces is not None and len(faces):
        out = blur_faces(out, faces, policy)  # again, last: a body pass must not unblur a face
    return out


def blur_outside(pixels: Image, polygons: Sequence[Sequence[Sequence[float]]], cells: int = 24) -> Image:
    """A copy of pixels with everything outside the normalised polygons pixelated (privacy option)."""
    h, w = pixels.shape[:2]
    keep = np.zeros((h, w), np.uint8)
    for polygon in polygons:
        if len(polygon) >= 3:
            points = np.round(np.array([[x * w, y * h] for x, y in polygon], np.float64)).astype(np.int32)
            cv2.fillPoly(keep, [points], 255)
    coarse = _pixelate(pixels, cells)
    return np.where(keep[..., None] > 0, pixels, coarse).astype(np.uint8)


def _label(image: Image, text: str, origin: tuple[int, int], scale: float) -> Rect:
    """White text on a black band from origin; returns the band's rect."""
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = origin
    y = max(th + base, y)
    cv2.rectangle(image, (x, y - th - base), (x + tw, y + base // 2), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (x, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOUR, thickness)
    return x, y - th - base, x + tw + 1, y + base // 2 + 1


def _tag_size(text: str, scale: float) -> tuple[int, int]:
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, round(scale * 2)))
    return tw + 2 * TAG_PAD_PX, th + 2 * TAG_PAD_PX


def _draw_tag(image: Image, rect: Rect, text: str, scale: float, box: Rect) -> None:
    """The number on a box-coloured tag; a leader line when the tag had to move off the box."""
    x1, y1, x2, y2 = rect
    bx1, by1, bx2, by2 = box
    near_x, near_y = min(max((bx1 + bx2) // 2, x1), x2 - 1), min(max((by1 + by2) // 2, y1), y2 - 1)
    on_x, on_y = min(max(near_x, bx1), bx2), min(max(near_y, by1), by2)
    if abs(on_x - near_x) + abs(on_y - near_y) > 3:
        cv2.line(image, (near_x, near_y), (on_x, on_y), BOX_COLOUR, 1, cv2.LINE_AA)
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), BOX_COLOUR, cv2.FILLED)
    thickness = max(1, round(scale * 2))
    origin = (x1 + TAG_PAD_PX, y2 - 1 - TAG_PAD_PX)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)


def _pixel_box(obj: EvidenceObject) -> Rect:
    x1, y1, x2, y2 = (round(v) for v in obj.xyxy)
    return x1, y1, x2, y2


def _annotate(
    image: Image,
    zone_polygon: Sequence[Sequence[float]],
    objects: Sequence[EvidenceObject],
    header: str,
) -> None:
    """Zone, one box per object numbered 1.. in list order, header; tags placed last, on top."""
    h, w = image.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    line = max(1, round(min(w, h) / 300))
    if len(zone_polygon) >= 2:
        points = np.array([[x * w, y * h] for x, y in zone_polygon], dtype=np.float64)
        cv2.polylines(image, [np.round(points).astype(np.int32)], True, ZONE_COLOUR, line)
    boxes = [_pixel_box(obj) for obj in objects]
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, line + 1)
    header_rect = _label(image, _to_ascii(header), (4, 4), scale)
    numbers = [str(n) for n in range(1, len(objects) + 1)]
    rects = place_tags(boxes, [_tag_size(text, scale) for text in numbers], (w, h), reserved=[header_rect])
    for text, rect, box in zip(numbers, rects, boxes, strict=True):
        _draw_tag(image, rect, text, scale, box)


def _drawn(objects: Sequence[EvidenceObject], resolution_wh: tuple[int, int]) -> tuple[DrawnObject, ...]:
    w, h = resolution_wh
    drawn = []
    for obj in objects:
        x1, y1, x2, y2 = (float(v) for v in obj.xyxy)
        box = (
            min(max(x1 / w, 0.0), 1.0),
            min(max(y1 / h, 0.0), 1.0),
            min(max(x2 / w, 0.0), 1.0),
            min(max(y2 / h, 0.0), 1.0),
        )
        drawn.append(DrawnObject(label=obj.label, confidence=float(obj.confidence), bbox=box))
    return tuple(drawn)


def _crop_box(objects: Sequence[EvidenceObject], resolution_wh: tuple[int, int], policy: EvidencePolicy):
    w, h = resolution_wh
    boxes = np.array([list(obj.xyxy) for obj in objects], dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return 0, 0, w, h
    x1, y1 = boxes[:, 0].min(), boxes[:, 1].min()
    x2, y2 = boxes[:, 2].max(), boxes[:, 3].max()
    mx = max((x2 - x1) * policy.crop_margin, (policy.crop_min_side_px - (x2 - x1)) / 2, 0)
    my = max((y2 - y1) * policy.crop_margin, (policy.crop_min_side_px - (y2 - y1)) / 2, 0)
    left, top = int(max(0, np.floor(x1 - mx))), int(max(0, np.floor(y1 - my)))
    right, bottom = int(min(w, np.ceil(x2 + mx))), int(min(h, np.ceil(y2 + my)))
    if right - left < 1 or bottom - top < 1:
        return 0, 0, w, h
    return left, top, right, bottom


def _zone_box(
    zone_polygon: Sequence[Sequence[float]],
    objects: Sequence[EvidenceObject],
    resolution_wh: tuple[int, int],
    policy: EvidencePolicy,
) -> tuple[int, int, int, int]:
    """The zone's bounding box in pixels, grown to hold the objects too."""
    w, h = resolution_wh
    if len(zone_polygon) < 3:
        return _crop_box(objects, resolution_wh, policy)
    points = np.array(zone_polygon, np.float64) * np.array([w, h])
    boxes = np.array([list(o.xyxy) for o in objects], np.float64).reshape(-1, 4)
    x1 = min(points[:, 0].min(), *(boxes[:, 0] if len(boxes) else [w]))
    y1 = min(points[:, 1].min(), *(boxes[:, 1] if len(boxes) else [h]))
    x2 = max(points[:, 0].max(), *(boxes[:, 2] if len(boxes) else [0]))
    y2 = max(points[:, 1].max(), *(boxes[:, 3] if len(boxes) else [0]))
    left, top = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
    right, bottom = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
    if right - left < 8 or bottom - top < 8:
        return 0, 0, w, h
    return left, top, right, bottom


def _before_now(
    before: Image,
    now: Image,
    zone_polygon: Sequence[Sequence[float]],
    objects: Sequence[EvidenceObject],
    policy: EvidencePolicy,
) -> Image:
    """One picture at most as wide as the frame: the zone before (clean background) | the zone now."""
    h, w = now.shape[:2]
    left, top, right, bottom = _zone_box(zone_polygon, objects, (w, h), policy)
    half = (w - STRIP_GAP_PX) // 2
    crop_w, crop_h = right - left, bottom - top
    scale = min(1.0, half / crop_w, (h * 0.6) / crop_h)  # never up: a small zone stays sharp, not big
    size = (max(1, round(crop_w * scale)), max(1, round(crop_h * scale)))
    panels = []
    for picture, caption in ((before, "BEFORE"), (now, "NOW")):
        panel = np.asarray(cv2.resize(np.ascontiguousarray(picture[top:bottom, left:right]), size), np.uint8)
        for obj in objects:
            x1, y1, x2, y2 = ((v - o) * scale for v, o in zip(obj.xyxy, (left, top, left, top), strict=True))
            cv2.rectangle(panel, (round(x1), round(y1)), (round(x2), round(y2)), BOX_COLOUR, 1)
        _label(panel, caption, (4, 4), max(0.4, size[1] / 500))
        panels.append(panel)
    strip = np.zeros((size[1], 2 * size[0] + STRIP_GAP_PX, 3), np.uint8)
    strip[:, : size[0]] = panels[0]
    strip[:, size[0] + STRIP_GAP_PX :] = panels[1]
    return strip


def encode_bounded_jpeg(image: Image, policy: EvidencePolicy | None = None) -> bytes:
    """JPEG no longer than max_long_side_px and, quality stepping down, under max_bytes.

    If even the lowest quality is too big the picture shrinks by a quarter and
    the steps start again; a small enough picture always fits.
    """
    policy = policy or EvidencePolicy()
    h, w = image.shape[:2]
    scale = min(1.0, policy.max_long_side_px / max(w, h))
    while True:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resized = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        for quality in policy.quality_steps:
            ok, buf = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise ValueError(f"JPEG encoding failed for an image of shape {resized.shape}")
            if buf.size <= policy.max_bytes or max(size) <= 16:
                return buf.tobytes()
        scale *= 0.75


def render_evidence(
    pixels: Image,
    *,
    zone_polygon: Sequence[Sequence[float]],
    objects: Sequence[EvidenceObject],
    detections: Detections,
    camera_id: str,
    incident_id: str,
    local_time: datetime,
    policy: EvidencePolicy | None = None,
    faces: Detections | None = None,
    reference: Image | None = None,
    reference_faces: Detections | None = None,
) -> Evidence:
    """Annotated overview and clean object crop of one frame, people blurred in both.

    pixels: the incident's evidence frame (BGR). zone_polygon: normalised 0..1
    corners. objects: the incident's objects in pixel xyxy (duplicates are drawn
    once; `Evidence.objects` says which, in tag order). detections: every
    detection of that frame (the people among them get blurred). local_time:
    aware datetime already in the zone's timezone. faces: face boxes in that
    frame, blurred as well. reference: the clean background (any size; scaled
    to the frame) for the BEFORE / NOW strip; reference_faces: faces found in it,
    in the frame's pixels. The people of `detections` are blurred in it too.
    """
    policy = policy or EvidencePolicy()
    blurred = blur_people(pixels, detections, policy, faces)
    h, w = blurred.shape[:2]
    objects = one_per_object(objects)
    left, top, right, bottom = _crop_box(objects, (w, h), policy)
    crop = np.ascontiguousarray(blurred[top:bottom, left:right])
    annotated = blurred.copy()
    header = f"{camera_id}  {local_time.strftime('%Y-%m-%d %H:%M:%S %Z')}  #{incident_id[:8]}"
    _annotate(annotated, zone_polygon, objects, header)
    before_now = None
    if reference is not None:
        # The background may be kept smaller than the frame; it must line up with it pixel for pixel.
        before = np.asarray(cv2.resize(reference, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        before = blur_people(before, detections, policy, reference_faces)
        strip = _before_now(before, blurred, zone_polygon, objects, policy)
        before_now = encode_bounded_jpeg(strip, BEFORE_NOW_POLICY)
    return Evidence(
        annotated_jpeg=encode_bounded_jpeg(annotated, policy),
        crop_jpeg=encode_bounded_jpeg(crop, policy),
        before_now_jpeg=before_now,
        objects=_drawn(objects, (w, h)),
    )
