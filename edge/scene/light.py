"""Light compensation and camera-shift estimation: what the backgrounds are compared through.

Clouds and lamps change the light of a whole area at once; a box on the sidewalk changes a
small part of it. So the gain between the picture and the background is taken as the median
ratio per coarse cell (a box filling less than half a cell does not move its median) and
spread smoothly back over the picture. A soft shadow keeps the colour of what it falls on
and only darkens it evenly: `shadow_mask` says where a difference is just that.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[Any]  # float32 pictures; OpenCV's stubs type results loosely
Mask = npt.NDArray[np.bool_]

GAIN_RANGE = (0.2, 5.0)  # beyond this it is not a change of light but of what is there
SHADOW_RATIO = (0.35, 0.92)  # a shadow darkens each channel to this share of the lit colour
SHADOW_SPREAD = 0.12  # ... by the same share in every channel, within this much
GRAY_WEIGHTS = np.array([0.114, 0.587, 0.299], np.float32)  # BGR


def gray(image: F32) -> F32:
    out: F32 = cv2.transform(image, GRAY_WEIGHTS[None, :]).reshape(image.shape[:2])
    return out


def gain_field(current_gray: F32, background_gray: F32, cells_x: int = 8) -> F32:
    """Per-pixel gain (current / background) of the light, from per-cell medians, smooth."""
    h, w = current_gray.shape
    ratio = (current_gray + 8.0) / (background_gray + 8.0)
    cell = max(4, w // cells_x)
    rows, cols = max(1, h // cell), max(1, w // cell)
    core = ratio[: rows * cell, : cols * cell]
    blocks = core.reshape(rows, cell, cols, cell).transpose(0, 2, 1, 3).reshape(rows, cols, cell * cell)
    medians = np.median(blocks, axis=2).astype(np.float32)
    np.clip(medians, *GAIN_RANGE, out=medians)
    field: F32 = cv2.resize(medians, (w, h), interpolation=cv2.INTER_LINEAR)
    return field


def global_gain(current_gray: F32, background_gray: F32) -> float:
    ratio = (current_gray[::2, ::2] + 8.0) / (background_gray[::2, ::2] + 8.0)
    return float(np.clip(np.median(ratio), *GAIN_RANGE))


def channel_max(image: F32) -> F32:
    """Per-pixel maximum over the three channels (cv2: numpy's reduce over a last axis of 3 is slow)."""
    b, g, r = cv2.split(image)
    out: F32 = cv2.max(cv2.max(b, g), r)
    return out


def channel_min(image: F32) -> F32:
    b, g, r = cv2.split(image)
    out: F32 = cv2.min(cv2.min(b, g), r)
    return out


def difference(current: F32, expected: F32) -> F32:
    """Largest absolute difference over the channels."""
    return channel_max(cv2.absdiff(current, expected))


def shadow_mask(current: F32, expected: F32) -> Mask:
    """Pixels darker than expected by one even share in every channel: shade, not a new thing."""
    ratio = cv2.divide(current + 4.0, expected + 4.0)
    low = channel_min(ratio)
    high = channel_max(ratio)
    lo, hi = SHADOW_RATIO
    result: Mask = (low >= lo) & (high <= hi) & (high - low <= SHADOW_SPREAD)
    return result


class ShiftEstimator:
    """The camera's shift against the background, by phase correlation.

    `shift` works at half resolution (cheap, run often); `refine` at the working resolution
    measures what is left after a shift was followed, to a tenth of a pixel.
    """

    def __init__(self, size_wh: tuple[int, int]) -> None:
        w, h = size_wh
        self.half_wh = (max(16, w // 2), max(16, h // 2))
        self.scale = w / self.half_wh[0]
        self._window = cv2.createHanningWindow(self.half_wh, cv2.CV_32F)
        self._full_window = cv2.createHanningWindow(size_wh, cv2.CV_32F)

    def shift(self, background_gray: F32, current_gray: F32) -> tuple[float, float, float]:
        """(dx, dy, response): how far the current picture's content moved, in working pixels."""
        # Fresh arrays (resize): phaseCorrelate applies its window to its inputs in place.
        a = cv2.resize(background_gray, self.half_wh, interpolation=cv2.INTER_AREA)
        b = cv2.resize(current_gray, self.half_wh, interpolation=cv2.INTER_AREA)
        (dx, dy), response = cv2.phaseCorrelate(a, b, self._window)
        return dx * self.scale, dy * self.scale, float(response)

    def refine(self, background_gray: F32, current_gray: F32) -> tuple[float, float, float]:
        # Copies: phaseCorrelate applies its window to the arrays it is given.
        a, b = background_gray.copy(), current_gray.copy()
        (dx, dy), response = cv2.phaseCorrelate(a, b, self._full_window)
        return float(dx), float(dy), float(response)


def translate(image: npt.NDArray[np.float32], dx: float, dy: float, replicate: bool) -> F32:
    h, w = image.shape[:2]
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT
    moved: F32 = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)
    return moved


def texture(gray_image: F32) -> float:
    """Mean absolute Laplacian: how much detail a picture has (a covered lens has little)."""
    return float(np.mean(np.abs(cv2.Laplacian(gray_image, cv2.CV_32F, ksize=3))))
