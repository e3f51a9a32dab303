"""When two boxes of an incident are one object.

NanoDet sometimes reports one physical object as several overlapping boxes: a pair of
bicycles as one box plus a box per bicycle, or one bicycle twice at different sizes. Both
rules here measure overlap as the intersection over the *smaller* box's area (`cover`), so a
box that lies inside a bigger one counts fully, which IoU would not.

- `places_differ` (decisions): whether the objects of an incident moved since its last event.
- `distinct_objects` (presentation): the incident's object list with duplicate boxes dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.incidents.types import Box, IncidentObject

DUPLICATE_COVER = 0.8  # same label and this much of the smaller box covered: one object


def cover(a: Sequence[Box], b: Sequence[Box]) -> npt.NDArray[np.float64]:
    """(n, m) intersection area over the smaller box's area of two xyxy box lists.

    A box without area covers nothing and is covered by nothing.
    """
    if not a or not b:
        return np.zeros((len(a), len(b)), np.float64)
    x = np.array(a, np.float64)
    y = np.array(b, np.float64)
    iw = np.clip(np.minimum(x[:, None, 2], y[None, :, 2]) - np.maximum(x[:, None, 0], y[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(x[:, None, 3], y[None, :, 3]) - np.maximum(x[:, None, 1], y[None, :, 1]), 0, None)
    area_x = (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    area_y = (y[:, 2] - y[:, 0]) * (y[:, 3] - y[:, 1])
    result: npt.NDArray[np.float64] = iw * ih / np.maximum(np.minimum(area_x[:, None], area_y[None, :]), 1e-9)
    return result


def places_differ(current: Sequence[Box], emitted: Sequence[Box], same: float = 0.5) -> bool:
    """Whether an object appeared at or left a place since the last event.

    Places, not track ids: one object seen as two overlapping boxes, or a track re-created
    under a new id, is no change. Two boxes are one place when `cover` >= `same`.
    """
    if not current or not emitted:
        return bool(current) != bool(emitted)
    same_place = cover(current, emitted) >= same
    return bool(not same_place.any(axis=1).all() or not same_place.any(axis=0).all())


def distinct_objects(
    objects: Sequence[IncidentObject], min_cover: float | None = DUPLICATE_COVER
) -> tuple[IncidentObject, ...]:
    """`objects` less every box that duplicates a more confident one of the same label.

    Greedy, most confident first (ties: earlier first): a box is dropped when its `cover`
    with an already kept box of the same label is at least `min_cover`, whichever of the two
    is bigger; so a pair box less confident than its bicycles goes, and so do the bicycles
    of a more confident pair box. Dropped boxes drop nothing. The kept objects keep their
    order. `min_cover=None` keeps everything. A new tuple; the input is not changed.
    """
    if min_cover is None or len(objects) < 2:
        return tuple(objects)
    boxes = [o.xyxy for o in objects]
    covered = cover(boxes, boxes) >= min_cover
    order = sorted(range(len(objects)), key=lambda i: -objects[i].confidence)  # stable: ties by position
    kept: list[int] = []
    for i in order:
        if not any(covered[i, k] and objects[i].label == objects[k].label for k in kept):
            kept.append(i)
    return tuple(objects[i] for i in sorted(kept))
