"""Static regions join the detector's rows: one row per object, the detector's goods label first."""

from __future__ import annotations

import numpy as np
import pytest

from edge.scene.merge import merge_static, with_scene_classes
from models.classes import COCO_CLASSES, SIGNBOARD, STATIC_OBJECT
from models.types import Detections

REGION = np.array([[100.0, 100.0, 200.0, 180.0]], np.float32)
SCORE = np.array([0.9], np.float32)


def detections(*rows: tuple[str, tuple[float, float, float, float]]) -> Detections:
    return Detections(
        xyxy=np.array([box for _, box in rows], np.float32).reshape(-1, 4),
        confidence=np.full(len(rows), 0.7, np.float32),
        class_id=np.array([COCO_CLASSES.index(name) for name, _ in rows], np.int64),
        class_names=COCO_CLASSES,
    )


@pytest.mark.parametrize(
    ("rows", "goods", "expected"),
    [
        ((), None, [STATIC_OBJECT]),
        ((("chair", (105.0, 95.0, 195.0, 185.0)),), None, ["chair"]),  # the COCO label wins
        ((("chair", (130.0, 120.0, 170.0, 160.0)),), None, ["chair"]),  # a chair inside the region
        ((("chair", (400.0, 400.0, 450.0, 450.0)),), None, ["chair", STATIC_OBJECT]),  # elsewhere
        ((("person", (110.0, 60.0, 150.0, 180.0)),), None, ["person", STATIC_OBJECT]),  # never hides
        ((("dog", (100.0, 100.0, 200.0, 180.0)),), frozenset({"chair"}), ["dog", STATIC_OBJECT]),
        ((("dog", (100.0, 100.0, 200.0, 180.0)),), None, ["dog"]),
    ],
)
def test_one_row_per_object(
    rows: tuple[tuple[str, tuple[float, float, float, float]], ...],
    goods: frozenset[str] | None,
    expected: list[str],
) -> None:
    merged = merge_static(detections(*rows), REGION, SCORE, goods_classes=goods)
    assert merged.labels == expected


def test_class_names_gain_the_scene_classes_once_and_ids_stay() -> None:
    names = with_scene_classes(COCO_CLASSES)
    assert names[:80] == COCO_CLASSES and names[80:] == (STATIC_OBJECT, SIGNBOARD)
    assert with_scene_classes(names) == names
    merged = merge_static(detections(("chair", (400.0, 400.0, 450.0, 450.0))), REGION, SCORE, [SIGNBOARD])
    assert merged.class_names == names
    assert merged.labels == ["chair", SIGNBOARD]
    np.testing.assert_allclose(merged.xyxy[1], REGION[0])
    assert float(merged.confidence[1]) == pytest.approx(0.9)


def test_the_input_is_left_as_it_was() -> None:
    original = detections(("chair", (105.0, 95.0, 195.0, 185.0)))
    merge_static(original, REGION, SCORE)
    assert original.labels == ["chair"] and len(original) == 1 and original.class_names == COCO_CLASSES
