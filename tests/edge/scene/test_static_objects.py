"""The per-camera eye: sampling, people from the detector, signboards read once per new region."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.scene.config import SceneSettings
from edge.scene.static_objects import StaticObjects, goods_classes, used_by
from models.classes import COCO_CLASSES, SIGNBOARD, STATIC_OBJECT
from models.text import load_text_detector
from models.types import Detections, Frame, Image
from tests.edge.scene.conftest import BOX_XY
from zones.loader import parse_zone_document as load_zone_text

NO_ONE = Detections.empty(COCO_CLASSES)


class CountingTextFinder:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls = 0

    def has_text(self, image: Image) -> bool:
        self.calls += 1
        return self.answer


def feed(eye: StaticObjects, frames: list[np.ndarray], people: list[np.ndarray]) -> list[Detections]:
    merged = []
    for t, pixels in enumerate(frames):
        frame = Frame(pixels, "cam", float(t))
        h, w = pixels.shape[:2]
        boxes = people[t] * np.array([w, h, w, h], np.float32)
        found = Detections(
            boxes, np.full(len(boxes), 0.8, np.float32), np.zeros(len(boxes), np.int64), COCO_CLASSES
        )
        eye.observe(frame, found)
        merged.append(eye.merge(frame, found))
    return merged


def test_wants_one_picture_per_interval() -> None:
    eye = StaticObjects(SceneSettings(interval_s=1.0))
    assert eye.wants(0.0)
    eye.offer(np.zeros((48, 64, 3), np.uint8), 0.0)
    assert not eye.wants(0.5) and eye.wants(0.8) and eye.wants(1.0)
    assert eye.offer(np.zeros((48, 64, 3), np.uint8), 0.3) is None
    assert eye.wants(-5.0)  # time went back (a file looped): start again


def test_the_text_finder_runs_once_per_new_region_not_per_frame(
    street_with_box: list[np.ndarray], street_with_box_people: list[np.ndarray]
) -> None:
    finder = CountingTextFinder(answer=True)
    eye = StaticObjects(SceneSettings(), text_finder=finder)
    merged = feed(eye, street_with_box[:60], street_with_box_people)
    frames_with_box = [m for m in merged if SIGNBOARD in m.labels]
    assert len(frames_with_box) >= 15
    assert 1 <= finder.calls <= 3  # the region may change shape as walkers uncover it


def test_without_a_text_finder_regions_are_static_objects(
    street_with_box: list[np.ndarray], street_with_box_people: list[np.ndarray]
) -> None:
    eye = StaticObjects(SceneSettings())
    merged = feed(eye, street_with_box[:60], street_with_box_people)
    assert STATIC_OBJECT in merged[-1].labels
    snapshot = eye.snapshot()
    assert snapshot.background is not None and snapshot.background.shape == (288, 384, 3)


def test_a_real_sign_is_read_as_a_signboard_and_a_box_of_cookies_too(opencv_data: Path) -> None:
    """The real PP-OCR detector on real crops: scene text yes, a bare pavement crop no."""
    detector = load_text_detector()
    sign = cv2.imread(str(opencv_data / "scenetext01.jpg"))
    street = cv2.VideoCapture(str(opencv_data / "vtest.avi")).read()[1]
    assert detector.has_text(sign)
    assert not detector.has_text(street[420:560, 300:500])  # grass and path
    box = cv2.imread(str(opencv_data / "box.png"))
    assert detector.has_text(box)  # the printed carton: a signboard by this rule
    assert BOX_XY  # (the box photo is the one the scenario pastes in)


def test_zones_decide_whether_the_model_runs_and_which_labels_name_a_region() -> None:
    text = """
camera_id: cam
zones:
  - id: a
    kind: monitored
    polygon: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]
    shop: {id: s, name: S}
    classes: [chair, static object]
  - id: b
    kind: exempt
    polygon: [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]]
    classes: [bicycle]
"""
    zones = load_zone_text(text, "zones.yaml")
    assert used_by(zones) and goods_classes(zones) == frozenset({"chair"})
    plain = load_zone_text(text.replace("[chair, static object]", "[chair]"), "zones.yaml")
    assert not used_by(plain)
    defaults = load_zone_text(text.replace("    classes: [chair, static object]\n", ""), "zones.yaml")
    assert used_by(defaults)  # the default classes include `static object`
