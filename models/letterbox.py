"""Letterbox resizing exactly as ultralytics does it, and the way back to source pixels.

Reproducing ultralytics' rounding (each resized side rounded on its own, padding
split with the `- 0.1` / `+ 0.1` rule, per-axis gains from the rounded sizes) is
what lets our ONNX path give the same boxes as `YOLO(...).predict` to 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from models.types import FloatArray, Image

PAD_VALUE = 114  # ultralytics' grey; the models were trained with it


@dataclass(frozen=True)
class LetterboxGeometry:
    """How a source image was placed in the network input, to map boxes back."""

    source_wh: tuple[int, int]
    input_wh: tuple[int, int]
    resized_wh: tuple[int, int]
    pad_left_top: tuple[int, int]

    def to_source(self, xyxy_input: FloatArray) -> FloatArray:
        """Input-pixel xyxy boxes -> source-pixel boxes, clipped to the source image."""
        gain_x = self.resized_wh[0] / self.source_wh[0]
        gain_y = self.resized_wh[1] / self.source_wh[1]
        offset = np.array(self.pad_left_top * 2, dtype=np.float32)
        gain = np.array((gain_x, gain_y, gain_x, gain_y), dtype=np.float32)
        boxes = (np.asarray(xyxy_input, dtype=np.float32) - offset) / gain
        upper = np.array(self.source_wh * 2, dtype=np.float32)
        return np.clip(boxes, 0, upper).astype(np.float32)


def letterbox(
    image: Image, size_hw: tuple[int, int], *, auto: bool = False, stride: int = 32
) -> tuple[Image, LetterboxGeometry]:
    """Resize keeping the aspect ratio, then pad to `size_hw` (or, with `auto`, to the next stride multiple).

    `auto=True` is ultralytics' "minimum rectangle" mode, used with dynamic-shape
    exports: fewer padded pixels, less compute.
    """
    source_h, source_w = image.shape[:2]
    ratio = min(size_hw[0] / source_h, size_hw[1] / source_w)
    resized_w, resized_h = max(round(source_w * ratio), 1), max(round(source_h * ratio), 1)
    pad_w, pad_h = size_hw[1] - resized_w, size_hw[0] - resized_h
    if auto:
        pad_w, pad_h = pad_w % stride, pad_h % stride
    left, right = round(pad_w / 2 - 0.1), round(pad_w / 2 + 0.1)
    top, bottom = round(pad_h / 2 - 0.1), round(pad_h / 2 + 0.1)
    if (resized_w, resized_h) != (source_w, source_h):
        image = np.asarray(cv2.resize(image, (resized_w, resized_h), interpolation=cv2.INTER_LINEAR))
    border = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    padded = np.asarray(border, dtype=np.uint8)
    geometry = LetterboxGeometry(
        source_wh=(source_w, source_h),
        input_wh=(resized_w + left + right, resized_h + top + bottom),
        resized_wh=(resized_w, resized_h),
        pad_left_top=(left, top),
    )
    return padded, geometry


def to_nchw_rgb(image: Image) -> npt.NDArray[np.float32]:
    """BGR uint8 (h, w, 3) -> RGB float32 (1, 3, h, w) in 0..1.

    Divides in float32 like torch's `div_(255)`, so inputs are bit-identical to ultralytics'.
    """
    chw_rgb = image.transpose(2, 0, 1)[::-1]
    tensor = np.empty((1, *chw_rgb.shape), dtype=np.float32)
    np.divide(chw_rgb, np.float32(255), out=tensor[0], dtype=np.float32)
    return tensor
