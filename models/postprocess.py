"""Post-processing shared by the detector backends: box overlap and non-maximum suppression."""

from __future__ import annotations

import numpy as np

from models.types import FloatArray, IntArray


def box_iou_one_to_many(box: FloatArray, boxes: FloatArray) -> FloatArray:
    """IoU of one xyxy box against (n, 4) xyxy boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return (inter / np.maximum(area + areas - inter, 1e-9)).astype(np.float32)


# Up to this many boxes, NMS computes every pairwise IoU at once (1024^2 float32: 4 MB per
# temporary) and then only flips flags in its Python loop; beyond, one box at a time.
PAIRWISE_LIMIT = 1024


def box_areas(xyxy: FloatArray) -> FloatArray:
    area: FloatArray = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    return area


def box_intersections(a: FloatArray, b: FloatArray) -> FloatArray:
    """(n, m) intersection areas of two non-empty xyxy box arrays."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter: FloatArray = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """(n, m) IoU matrix of two xyxy box arrays, each entry as `box_iou_one_to_many` computes it."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter = box_intersections(a, b)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return (inter / np.maximum(union, 1e-9)).astype(np.float32)


def pairwise_iou(xyxy: FloatArray) -> FloatArray:
    """(n, n) IoU of (n, 4) xyxy boxes."""
    return box_iou(xyxy, xyxy)


def nms(xyxy: FloatArray, scores: FloatArray, iou_threshold: float) -> IntArray:
    """Greedy NMS (the torchvision rule); returns kept indices, best score first.

    A scene with hundreds of candidates (a low threshold, a crowd) cost 12 ms for 300
    boxes one box at a time, mostly NumPy call overhead; the pairwise matrix takes about 1 ms.
    """
    order = np.argsort(-scores, kind="stable")
    if order.size > PAIRWISE_LIMIT:
        return _nms_one_at_a_time(xyxy, order, iou_threshold)
    overlaps = pairwise_iou(xyxy[order]) > iou_threshold
    suppressed = np.zeros(order.size, dtype=bool)
    keep: list[int] = []
    for rank in range(order.size):
        if suppressed[rank]:
            continue
        keep.append(rank)
        suppressed |= overlaps[rank]
    return order[np.asarray(keep, dtype=np.int64)].astype(np.int64)


def _nms_one_at_a_time(xyxy: FloatArray, order: IntArray, iou_threshold: float) -> IntArray:
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou_one_to_many(xyxy[best], xyxy[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    xyxy: FloatArray, scores: FloatArray, class_id: IntArray, iou_threshold: float, max_det: int = 300
) -> IntArray:
    """Per-class NMS: boxes of different classes never suppress each other.

    Shifts each class's boxes by an offset larger than any coordinate, the same
    trick ultralytics uses, so one NMS pass handles all classes.
    """
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.int64)
    offset = float(np.abs(xyxy).max()) + 1.0
    shifted = xyxy + (class_id.astype(np.float32) * offset)[:, None]
    return nms(shifted, scores, iou_threshold)[:max_det]
