"""Real pictures for the scene model: vtest.avi frames, the box photo pasted in."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.scenarios.footage import Placement, vtest_frames
from tests.scenarios.static_cases import load_box

BOX_XY = (150, 200)  # top-left in the 768x576 frame


@pytest.fixture(scope="session")
def box_patch(opencv_data: Path) -> np.ndarray:
    return load_box(opencv_data)


@pytest.fixture(scope="session")
def street(vtest_avi: Path) -> list[np.ndarray]:
    """80 s of vtest.avi at 1 fps, pedestrians only."""
    return [frame.pixels for frame in vtest_frames(vtest_avi, 1.0)]


@pytest.fixture(scope="session")
def street_with_box(vtest_avi: Path, box_patch: np.ndarray) -> list[np.ndarray]:
    """The same, with the box standing at BOX_XY from 15 s to 60 s."""
    placement = Placement(box_patch, BOX_XY, 15.0, 60.0)
    return [frame.pixels for frame in vtest_frames(vtest_avi, 1.0, (placement,))]


def box_truth(box_patch: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    h, w = box_patch.shape[:2]
    x, y = BOX_XY[0] + shift[0], BOX_XY[1] + shift[1]
    return np.array([x / 768, y / 576, (x + w) / 768, (y + h) / 576], np.float32)


def shifted(pixels: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    return cv2.warpAffine(pixels, matrix, (pixels.shape[1], pixels.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def people_of(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The bundled detector's person boxes of each frame, normalised: what the node holds."""
    from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector

    detector = NanoDetDetector(DEFAULT_MODEL_PATH)
    boxes = []
    for pixels in frames:
        found = detector.detect(pixels, 0.3)
        people = found[found.class_mask({"person"})]
        h, w = pixels.shape[:2]
        boxes.append((people.xyxy / np.array([w, h, w, h], np.float32)).astype(np.float32))
    return boxes


@pytest.fixture(scope="session")
def street_people(street: list[np.ndarray]) -> list[np.ndarray]:
    return people_of(street)


@pytest.fixture(scope="session")
def street_with_box_people(street_with_box: list[np.ndarray]) -> list[np.ndarray]:
    return people_of(street_with_box)
