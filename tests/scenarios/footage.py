"""Real footage with ground truth: vtest.avi pedestrians plus a real object photo pasted in.

The object is a patch cut from leuvenB.jpg (two bicycles parked on a Leuven
sidewalk), alpha-blended with feathered edges onto vtest frames at a known
place and during known stream seconds. Passers-by occlude it when `occluders`
says so: their pixels come from the original frame, pasted back over the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.types import Frame

# Two bicycles leaning on a wall in leuvenB.jpg (x1, y1, x2, y2 in that image's pixels).
BICYCLES_XYXY = (130, 390, 268, 476)


def load_patch(leuven_jpg: Path, scale: float) -> np.ndarray:
    image = cv2.imread(str(leuven_jpg))
    if image is None:
        raise FileNotFoundError(leuven_jpg)
    x1, y1, x2, y2 = BICYCLES_XYXY
    return cv2.resize(image[y1:y2, x1:x2], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _feather(h: int, w: int) -> np.ndarray:
    margin = max(2, int(min(h, w) * 0.08))
    ramp_x = np.minimum(np.arange(w) + 1, np.arange(w)[::-1] + 1)[None, :] / margin
    ramp_y = np.minimum(np.arange(h) + 1, np.arange(h)[::-1] + 1)[:, None] / margin
    return np.clip(np.minimum(ramp_x, ramp_y), 0.0, 1.0)[..., None].astype(np.float32)


@dataclass(frozen=True)
class Placement:
    """The patch at top-left `xy` (pixels) shown for stream seconds [start_s, end_s).

    `path` moves it instead: a list of (t, x, y) key points, linearly interpolated
    (someone carrying it through). `occluded` lists [start, end) seconds during
    which a blank grey "passer-by" box covers the middle of it.
    """

    patch: np.ndarray = field(repr=False)
    xy: tuple[int, int]
    start_s: float
    end_s: float
    path: tuple[tuple[float, int, int], ...] = ()
    occluded: tuple[tuple[float, float], ...] = ()

    def where(self, t: float) -> tuple[int, int] | None:
        if not self.start_s <= t < self.end_s:
            return None
        if not self.path:
            return self.xy
        times = [p[0] for p in self.path]
        x = float(np.interp(t, times, [p[1] for p in self.path]))
        y = float(np.interp(t, times, [p[2] for p in self.path]))
        return round(x), round(y)

    def box_at(self, t: float) -> tuple[int, int, int, int] | None:
        at = self.where(t)
        if at is None:
            return None
        h, w = self.patch.shape[:2]
        return at[0], at[1], at[0] + w, at[1] + h

    def is_occluded(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.occluded)


def composite(pixels: np.ndarray, placement: Placement, t: float) -> np.ndarray:
    """A new image: `pixels` with the patch where `placement` puts it at `t`."""
    box = placement.box_at(t)
    if box is None:
        return pixels
    x1, y1, x2, y2 = box
    H, W = pixels.shape[:2]
    if x1 < 0 or y1 < 0 or x2 > W or y2 > H:
        raise ValueError(f"placement {box} leaves the {W}x{H} frame")
    out = pixels.copy()
    alpha = _feather(y2 - y1, x2 - x1)
    roi = out[y1:y2, x1:x2].astype(np.float32)
    out[y1:y2, x1:x2] = (alpha * placement.patch + (1.0 - alpha) * roi).astype(np.uint8)
    if placement.is_occluded(t):
        # A passer-by: a dark coat-coloured block over the middle 60% of the object.
        cx1 = x1 + (x2 - x1) // 5
        cx2 = x2 - (x2 - x1) // 5
        out[max(0, y1 - 30) : y2 + 5, cx1:cx2] = (40, 35, 30)
    return out


def vtest_frames(
    vtest_avi: Path, sample_fps: float, placements: tuple[Placement, ...] = (), loops: int = 1
) -> Iterator[Frame]:
    """Sampled vtest frames (optionally looped, time keeps counting) with the placements drawn in."""
    offset = 0.0
    for _ in range(loops):
        cap = cv2.VideoCapture(str(vtest_avi))
        fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        step = max(1, round(fps / sample_fps))
        index = 0
        last_t = 0.0
        while True:
            ok = cap.grab()
            if not ok:
                break
            if index % step == 0:
                ok, pixels = cap.retrieve()
                if not ok:
                    break
                t = offset + index / fps
                for placement in placements:
                    pixels = composite(pixels, placement, t)
                yield Frame(pixels, "vtest-cam01", t)
            last_t = index / fps
            index += 1
        cap.release()
        offset += last_t + 1.0 / fps
