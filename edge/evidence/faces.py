"""Faces for evidence blurring, found by a face detector (models.faces) in any picture."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from models.types import Detections, Image


class FaceFinder(Protocol):
    """models.faces.FaceDetector, or any detector whose rows are faces."""

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections: ...


def faces_at(
    finder: FaceFinder | None, image: Image | None, frame_shape: tuple[int, ...]
) -> Detections | None:
    """Faces of `image` in the pixels of a frame of `frame_shape` (a smaller background scales up)."""
    if finder is None or image is None:
        return None
    found = finder.detect(image)
    sx, sy = frame_shape[1] / image.shape[1], frame_shape[0] / image.shape[0]
    if sx == 1.0 and sy == 1.0:
        return found
    scale = np.array([sx, sy, sx, sy], np.float32)
    return Detections(found.xyxy * scale, found.confidence, found.class_id, found.class_names)
