"""NMS follows the torchvision rule, per class."""

from __future__ import annotations

import numpy as np
import pytest

from models import postprocess
from models.postprocess import batched_nms, box_iou_one_to_many, nms, pairwise_iou


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize(
    ("box", "others", "expected"),
    [
        ((0, 0, 10, 10), [(0, 0, 10, 10)], [1.0]),
        ((0, 0, 10, 10), [(5, 0, 15, 10)], [50 / 150]),
        ((0, 0, 10, 10), [(20, 20, 30, 30)], [0.0]),
    ],
)
def test_iou(box: tuple[float, ...], others: list[tuple[float, ...]], expected: list[float]) -> None:
    result = box_iou_one_to_many(np.array(box, np.float32), boxes(*others))  # type: ignore[arg-type]
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_nms_keeps_best_of_overlapping_and_separate_boxes() -> None:
    xyxy = boxes((0, 0, 10, 10), (1, 1, 11, 11), (50, 50, 60, 60))
    scores = np.array([0.8, 0.9, 0.5], np.float32)
    assert nms(xyxy, scores, 0.5).tolist() == [1, 2]


def test_batched_nms_does_not_suppress_across_classes() -> None:
    xyxy = boxes((0, 0, 10, 10), (1, 1, 11, 11))
    scores = np.array([0.8, 0.9], np.float32)
    assert sorted(batched_nms(xyxy, scores, np.array([0, 1]), 0.5).tolist()) == [0, 1]
    assert batched_nms(xyxy, scores, np.array([0, 0]), 0.5).tolist() == [1]


def test_batched_nms_empty_and_max_det() -> None:
    empty = batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5)
    assert empty.shape == (0,)
    many = boxes(*[(i * 20, 0, i * 20 + 10, 10) for i in range(10)])
    kept = batched_nms(
        many, np.linspace(0.1, 1, 10).astype(np.float32), np.zeros(10, np.int64), 0.5, max_det=3
    )
    assert kept.tolist() == [9, 8, 7]


@pytest.mark.parametrize("count", [1, 40, 700])
def test_pairwise_nms_keeps_what_one_at_a_time_keeps(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same kept boxes, same order, whichever path runs; ties included (rounded scores)."""
    rng = np.random.default_rng(count)
    corners = rng.uniform(0, 600, (count, 2)).astype(np.float32)
    xyxy = np.concatenate([corners, corners + rng.uniform(5, 120, (count, 2)).astype(np.float32)], axis=1)
    scores = np.round(rng.uniform(0, 1, count), 2).astype(np.float32)
    classes = rng.integers(0, 3, count)
    pairwise = batched_nms(xyxy, scores, classes, 0.45, max_det=count)
    monkeypatch.setattr(postprocess, "PAIRWISE_LIMIT", 0)
    assert batched_nms(xyxy, scores, classes, 0.45, max_det=count).tolist() == pairwise.tolist()


def test_pairwise_iou_rows_equal_the_one_to_many_iou() -> None:
    xyxy = np.random.default_rng(3).uniform(0, 100, (30, 4)).astype(np.float32)
    xyxy[:, 2:] += xyxy[:, :2]
    matrix = pairwise_iou(xyxy)
    for row, box in enumerate(xyxy):
        assert np.array_equal(matrix[row], box_iou_one_to_many(box, xyxy))
