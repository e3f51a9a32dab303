"""Static regions joined to the detector's rows: one `Detections` for tracker, zones and incidents.

Where the detector already names a thing as goods (a COCO box of a class some zone counts,
over a static region), the detector's row stays and the region is dropped: one row per object,
with the better label. A box of any other class (the detector calling a fruit display a "dog")
does not hide the region: what no zone counts must not make an object invisible.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt

from models.classes import PEOPLE_CLASSES, SCENE_CLASSES, STATIC_OBJECT
from models.postprocess import box_areas, box_intersections
from models.types import Detections

NAMED_COVER = 0.5  # a detector box covering this share of a region (or it of the box) names it
NAMED_IOU = 0.3
PERSON_COVER = 0.5  # a region this much inside a sure person's box is that person, not goods
PERSON_MIN_CONFIDENCE = 0.3


def with_scene_classes(class_names: Sequence[str]) -> tuple[str, ...]:
    return tuple(class_names) + tuple(c for c in SCENE_CLASSES if c not in class_names)


def named_by_detector(
    regions_xyxy: npt.NDArray[np.float32], detections: Detections, goods_classes: Collection[str] | None
) -> npt.NDArray[np.bool_]:
    """True for each region (pixels) that a detector box of a goods class already stands for.

    goods_classes None: any class but people names a region.
    """
    if goods_classes is None:
        mask = ~detections.class_mask(PEOPLE_CLASSES) if len(detections) else np.zeros(0, np.bool_)
    else:
        mask = detections.class_mask(frozenset(goods_classes) - PEOPLE_CLASSES)
    goods = detections[mask] if len(detections) else detections
    if not len(goods) or not len(regions_xyxy):
        return np.zeros(len(regions_xyxy), np.bool_)
    inter = box_intersections(regions_xyxy, goods.xyxy)
    area_r, area_d = box_areas(regions_xyxy)[:, None], box_areas(goods.xyxy)[None, :]
    iou = inter / np.maximum(area_r + area_d - inter, 1e-6)
    cover = inter / np.maximum(np.minimum(area_r, area_d), 1e-6)
    named: npt.NDArray[np.bool_] = ((iou >= NAMED_IOU) | (cover >= NAMED_COVER)).any(axis=1)
    return named


def inside_people(regions_xyxy: npt.NDArray[np.float32], detections: Detections) -> npt.NDArray[np.bool_]:
    """True for each region mostly inside a sure person's box: someone standing still, not goods."""
    if not len(detections) or not len(regions_xyxy):
        return np.zeros(len(regions_xyxy), np.bool_)
    sure = detections.class_mask(PEOPLE_CLASSES) & (detections.confidence >= PERSON_MIN_CONFIDENCE)
    people = detections[sure]
    if not len(people):
        return np.zeros(len(regions_xyxy), np.bool_)
    inter = box_intersections(regions_xyxy, people.xyxy)
    area_r = np.maximum(box_areas(regions_xyxy)[:, None], 1e-6)
    inside = np.asarray((inter / area_r >= PERSON_COVER).any(axis=1), np.bool_)
    return inside


def merge_static(
    detections: Detections,
    regions_xyxy: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    labels: Sequence[str] | None = None,
    goods_classes: Collection[str] | None = None,
) -> Detections:
    """`detections` plus one row per region (pixels) the detector does not name; a new value."""
    names = with_scene_classes(detections.class_names)
    keep = ~named_by_detector(regions_xyxy, detections, goods_classes) & ~inside_people(
        regions_xyxy, detections
    )
    labels = list(labels) if labels is not None else [STATIC_OBJECT] * len(regions_xyxy)
    added_ids = np.array([names.index(labels[i]) for i in np.flatnonzero(keep)], np.int64)
    return Detections(
        xyxy=np.concatenate([detections.xyxy, regions_xyxy[keep].reshape(-1, 4)]),
        confidence=np.concatenate([detections.confidence, scores[keep]]),
        class_id=np.concatenate([detections.class_id, added_ids]),
        class_names=names,
    )
