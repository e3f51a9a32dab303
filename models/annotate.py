"""Draw `Detections` on a copy of an image: a box and a "label 0.87" tag per object."""

from __future__ import annotations

import cv2
import numpy as np

from models.types import Detections, Image

FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour_bgr(class_id: int) -> tuple[int, int, int]:
    """A stable, well-spread colour per class (golden-ratio hue steps): one class, one colour."""
    hue = int((class_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 200, 255]]], dtype=np.uint8)
    blue, green, red = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(blue), int(green), int(red)


def annotate(image: Image, detections: Detections) -> Image:
    """Return a new image with every detection drawn; the input is left untouched."""
    canvas = image.copy()
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 400))
    font_scale = max(0.4, min(height, width) / 1200)
    for xyxy, confidence, class_id, label in zip(
        detections.xyxy, detections.confidence, detections.class_id, detections.labels, strict=True
    ):
        x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
        colour = class_colour_bgr(int(class_id))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        text = f"{label} {confidence:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(text, FONT, font_scale, thickness)
        # Tag above the box, or inside it when the box touches the top edge.
        top = y1 - text_h - baseline if y1 - text_h - baseline >= 0 else y1
        cv2.rectangle(canvas, (x1, top), (x1 + text_w, top + text_h + baseline), colour, cv2.FILLED)
        cv2.putText(canvas, text, (x1, top + text_h), FONT, font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas
