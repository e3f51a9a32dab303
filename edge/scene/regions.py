"""Static regions: connected areas of enough static evidence, as normalised boxes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

# Joins the parts of one object whose middle happens to look like the pavement (9 px at 384 wide).
CLOSE_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))


@dataclass(frozen=True, eq=False)
class StaticRegions:
    """Boxes (n, 4) normalised 0..1 of the frame, xyxy; `score` (n,) 0.5..1 by how solid each is."""

    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.xyxy.shape != (len(self.score), 4):
            raise ValueError(f"StaticRegions.xyxy: expected ({len(self.score)}, 4), got {self.xyxy.shape}")

    @classmethod
    def empty(cls) -> StaticRegions:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def in_pixels(self, resolution_wh: tuple[int, int]) -> npt.NDArray[np.float32]:
        w, h = resolution_wh
        scaled: npt.NDArray[np.float32] = self.xyxy * np.array([w, h, w, h], np.float32)
        return scaled


def find_regions(static: npt.NDArray[np.bool_], min_area: float, max_area: float) -> StaticRegions:
    """Connected areas of `static` (working resolution) between min_area and max_area of the frame."""
    h, w = static.shape
    mask = cv2.morphologyEx(static.astype(np.uint8), cv2.MORPH_CLOSE, CLOSE_KERNEL)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return StaticRegions.empty()
    stats = stats[1:]
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float32)
    frame_area = float(w * h)
    keep = (area >= max(4.0, min_area * frame_area)) & (area <= max_area * frame_area)
    stats, area = stats[keep], area[keep]
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    xyxy = np.stack([x / w, y / h, (x + bw) / w, (y + bh) / h], axis=1).astype(np.float32)
    fill = area / np.maximum(1.0, (bw * bh).astype(np.float32))
    score = (0.5 + 0.5 * np.clip(fill, 0.0, 1.0)).astype(np.float32)
    return StaticRegions(xyxy.reshape(-1, 4), score)


def boxes_mask(xyxy: npt.NDArray[np.float32], size_wh: tuple[int, int], grow: float) -> npt.NDArray[np.bool_]:
    """A mask of normalised boxes at `size_wh`, each grown by `grow` of its size on every side."""
    w, h = size_wh
    mask = np.zeros((h, w), np.bool_)
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float32).reshape(-1, 4):
        gx, gy = (x2 - x1) * grow, (y2 - y1) * grow
        c1, r1 = int(max(0.0, (x1 - gx) * w - 1)), int(max(0.0, (y1 - gy) * h - 1))
        c2, r2 = int(min(float(w), (x2 + gx) * w + 2)), int(min(float(h), (y2 + gy) * h + 2))
        if c2 > c1 and r2 > r1:
            mask[r1:r2, c1:c2] = True
    return mask
