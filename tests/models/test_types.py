"""Detections and Frame: shapes validated at construction, never mutated by slicing."""

from __future__ import annotations

import numpy as np
import pytest

from models.types import Detections, Frame

NAMES = ("person", "chair", "bench")


def make(n: int = 3) -> Detections:
    return Detections(
        xyxy=np.arange(n * 4, dtype=np.float32).reshape(n, 4),
        confidence=np.linspace(0.5, 0.9, n, dtype=np.float32),
        class_id=np.arange(n) % len(NAMES),
        class_names=NAMES,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xyxy": np.zeros((3,), np.float32)}, r"xyxy: expected \(n, 4\), got \(3,\)"),
        ({"xyxy": np.zeros((2, 5), np.float32)}, r"xyxy: expected \(n, 4\), got \(2, 5\)"),
        ({"confidence": np.zeros(2, np.float32)}, r"confidence: expected \(3,\), got \(2,\)"),
        ({"class_id": np.zeros((3, 1))}, r"class_id: expected \(3,\), got \(3, 1\)"),
        ({"class_id": np.array([0, 1, 3])}, r"class_id: values must lie in 0..2"),
        ({"tracker_id": np.zeros(4)}, r"tracker_id: expected \(3,\), got \(4,\)"),
    ],
)
def test_detections_rejects_bad_shapes(kwargs: dict[str, np.ndarray], message: str) -> None:
    fields = {
        "xyxy": np.zeros((3, 4), np.float32),
        "confidence": np.zeros(3, np.float32),
        "class_id": np.zeros(3, np.int64),
        "class_names": NAMES,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Detections(**fields)  # type: ignore[arg-type]


def test_mask_slicing_returns_new_detections_and_keeps_original() -> None:
    detections = make(3)
    picked = detections[np.array([True, False, True])]
    assert len(picked) == 2
    assert picked.labels == ["person", "bench"]
    np.testing.assert_array_equal(picked.xyxy, detections.xyxy[[0, 2]])
    assert len(detections) == 3
    assert not np.shares_memory(picked.xyxy, detections.xyxy)


def test_arrays_are_read_only() -> None:
    detections = make(2)
    with pytest.raises(ValueError, match="read-only"):
        detections.xyxy[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        detections.confidence[0] = 0.0


def test_empty_and_class_mask() -> None:
    empty = Detections.empty(NAMES)
    assert len(empty) == 0
    assert empty.xyxy.shape == (0, 4)
    assert empty.class_mask({"chair"}).shape == (0,)
    np.testing.assert_array_equal(make(3).class_mask({"chair", "bench"}), [False, True, True])


def test_with_tracker_id_and_integer_index() -> None:
    tracked = make(3).with_tracker_id(np.array([7, 8, 9]))
    assert tracked[1].tracker_id is not None
    assert tracked[1].tracker_id.tolist() == [8]


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.zeros((4, 4), np.uint8), r"expected \(h, w, 3\)"),
        (np.zeros((4, 4, 4), np.uint8), r"expected \(h, w, 3\)"),
        (np.zeros((4, 4, 3), np.float32), "expected uint8"),
    ],
)
def test_frame_validates_pixels(pixels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Frame(pixels=pixels, camera_id="cam", ts=0.0)


def test_frame_resolution() -> None:
    assert Frame(np.zeros((576, 768, 3), np.uint8), "cam", 1.5).resolution_wh == (768, 576)
