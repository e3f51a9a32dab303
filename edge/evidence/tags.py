"""One box per object and a number tag beside each, placed so no two tags overlap.

The evidence picture names objects by number (1, 2, ...), not by English text: the review
page's legend says what each number is, in the inspector's language. Two rules:

- `one_per_object`: a tracked object drawn twice (same tracker id), or two near-identical
  boxes (any labels), become one box; the most confident stays. Numbers follow confidence,
  so 1 is the incident's primary object.
- `place_tags`: greedy, tag by tag in number order: above-left of the box, below-left,
  inside top-left, the same on the right, inside bottom-left, then the free spot nearest
  the box on a grid over the picture. Every tag lies inside the picture and off every tag
  placed before it (and off the reserved header); only when no grid spot is left (a picture
  too small or too crowded for all its tags) does a tag overlap another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from models.postprocess import box_areas, box_intersections, box_iou

NEAR_IDENTICAL_IOU = 0.7  # two boxes this alike are one object whatever their labels say
DUPLICATE_COVER = 0.8  # same label, this much of the smaller box covered: edge.incidents.objects' rule
TAG_GAP_PX = 2  # kept free around each tag, so neighbours read as two tags, not one number

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, half-open: x1 <= x < x2


class TaggedObject(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    @property
    def xyxy(self) -> Sequence[float]: ...


_O = TypeVar("_O", bound=TaggedObject)


def _tracker_id(obj: TaggedObject) -> int | None:
    # IncidentObject carries its track; objects from elsewhere (analysis, tests) may not.
    value = getattr(obj, "tracker_id", None)
    return value if isinstance(value, int) else None


def _alike(boxes: Sequence[Sequence[float]]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(n, n) near-identical (IoU) and covered (intersection over the smaller box's area)."""
    if not len(boxes):
        empty = np.zeros((0, 0), bool)
        return empty, empty
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)  # pixels, as Detections keeps them
    inter = box_intersections(xyxy, xyxy)
    areas = np.clip(box_areas(xyxy), 0, None)
    smaller = np.minimum(areas[:, None], areas[None, :])
    covered = np.where(smaller > 0, inter / np.maximum(smaller, 1e-9), 0.0) >= DUPLICATE_COVER
    return box_iou(xyxy, xyxy) >= NEAR_IDENTICAL_IOU, covered


def one_per_object(objects: Sequence[_O]) -> tuple[_O, ...]:
    """The objects to draw, most confident first, one per physical object.

    An object is dropped when a kept, more confident one has the same tracker id, a box
    with IoU >= NEAR_IDENTICAL_IOU, or the same label and a box covering DUPLICATE_COVER of
    the smaller one. Ties keep the earlier object.
    """
    order = sorted(range(len(objects)), key=lambda i: -objects[i].confidence)
    alike, covered = _alike([list(o.xyxy) for o in objects])
    kept: list[int] = []
    for i in order:
        track = _tracker_id(objects[i])

        def same(k: int, i: int = i, track: int | None = track) -> bool:
            if track is not None and track == _tracker_id(objects[k]):
                return True
            return bool(alike[i, k] or (covered[i, k] and objects[i].label == objects[k].label))

        if not any(same(k) for k in kept):
            kept.append(i)
    return tuple(objects[i] for i in kept)


def _preferred(box: Rect, size_wh: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners to try first, best first, for a tag of size_wh beside box."""
    x1, y1, x2, y2 = box
    tw, th = size_wh
    return [
        (x1, y1 - th),  # above-left: the usual place, covers nothing of the object
        (x1, y2),  # below-left
        (x1, y1),  # inside top-left
        (x2 - tw, y1 - th),  # above-right
        (x2 - tw, y2),  # below-right
        (x1, y2 - th),  # inside bottom-left
    ]


def _grid(box: Rect, size_wh: tuple[int, int], image_wh: tuple[int, int]) -> npt.NDArray[np.int64]:
    """Every grid position over the picture, nearest to the box's above-left corner first."""
    w, h = image_wh
    tw, th = size_wh
    step_x, step_y = max(1, tw // 2), max(1, th // 2)
    xs = np.arange(0, max(1, w - tw + 1), step_x)
    ys = np.arange(0, max(1, h - th + 1), step_y)
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    anchor = np.array([box[0], box[1] - th])
    distance = np.hypot(*(points - anchor).T)
    return np.asarray(points[np.argsort(distance, kind="stable")], np.int64)


def _clamped(points: npt.NDArray[np.int64], size_wh: tuple[int, int], image_wh: tuple[int, int]):
    tw, th = size_wh
    w, h = image_wh
    out = points.copy()
    out[:, 0] = np.clip(out[:, 0], 0, max(0, w - tw))
    out[:, 1] = np.clip(out[:, 1], 0, max(0, h - th))
    return out


def _free(
    points: npt.NDArray[np.int64], size_wh: tuple[int, int], taken: list[Rect]
) -> npt.NDArray[np.bool_]:
    """Which top-left points give a tag that stays TAG_GAP_PX clear of every taken rect."""
    if not taken:
        return np.ones(len(points), bool)
    tw, th = size_wh
    t = np.asarray(taken, np.int64)
    x1, y1 = points[:, 0:1] - TAG_GAP_PX, points[:, 1:2] - TAG_GAP_PX
    x2, y2 = points[:, 0:1] + tw + TAG_GAP_PX, points[:, 1:2] + th + TAG_GAP_PX
    apart = (x2 <= t[None, :, 0]) | (t[None, :, 2] <= x1) | (y2 <= t[None, :, 1]) | (t[None, :, 3] <= y1)
    return np.asarray(apart.all(axis=1), np.bool_)


def _first_free(
    points: npt.NDArray[np.int64], size_wh: tuple[int, int], taken: list[Rect]
) -> tuple[int, int] | None:
    free = _free(points, size_wh, taken)
    if not free.any():
        return None
    x, y = points[int(np.argmax(free))]
    return int(x), int(y)


def place_tags(
    boxes: Sequence[Rect],
    sizes_wh: Sequence[tuple[int, int]],
    image_wh: tuple[int, int],
    reserved: Sequence[Rect] = (),
) -> list[Rect]:
    """A rect for each box's tag (sizes_wh[i] for boxes[i]), greedy in the given order."""
    if len(boxes) != len(sizes_wh):
        raise ValueError(f"place_tags: {len(boxes)} boxes but {len(sizes_wh)} tag sizes")
    w, h = image_wh
    if w < 1 or h < 1:
        raise ValueError(f"place_tags: image_wh must be positive, got {image_wh}")
    taken: list[Rect] = list(reserved)
    placed: list[Rect] = []
    for box, size in zip(boxes, sizes_wh, strict=True):
        tw, th = size
        preferred = _clamped(np.array(_preferred(box, size), np.int64), size, image_wh)
        spot = _first_free(preferred, size, taken)
        if spot is None:  # the grid only when the six usual places are taken: it costs more
            spot = _first_free(_grid(box, size, image_wh), size, taken)
        x, y = spot if spot is not None else (int(preferred[0, 0]), int(preferred[0, 1]))
        rect = (x, y, x + tw, y + th)
        taken.append(rect)
        placed.append(rect)
    return placed
