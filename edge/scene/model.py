"""The per-camera scene model: dual backgrounds and static evidence (Porikli, Ivanov & Haga 2008).

Two backgrounds are kept at a reduced working resolution:

- the *long-term* one is the clean sidewalk: the median of the first `learn_s` pictures with
  people masked out, then followed slowly (`long_term_s`) only where the picture matches it,
  so nothing standing is ever learned into it;
- the *short-term* one follows every picture within seconds (`short_term_s`).

A pixel new against the long-term background but steady against the short-term one is
something that arrived and stays: its *static evidence* grows by the picture time passed.
A pixel that matches the long-term background again has its evidence reset (the thing left).
Under people's boxes (from the detector) evidence is held, never grown, so a person standing
in a zone never becomes an object, and a passer-by (new against both backgrounds, like any
moving thing) does not wipe out a real one; only a pixel that shows the clean background
again resets, inside a person's box too. Connected
areas with `static_after_s` of evidence are the static regions.

Compared through light compensation (edge.scene.light): a per-cell gain for clouds and
lamps, a shadow test for shade. A camera nudged by a few pixels is followed by phase
correlation: both backgrounds and the evidence move with it, so an object keeps its region.
When most of the picture is new for `view_change_s`, the camera was blocked (the picture lost
its detail: OBSTRUCTED, the model waits) or moved (VIEW_CHANGED: everything is re-learned).
"""

from __future__ import annotations

import enum
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.scene.config import SceneSettings
from edge.scene.light import (
    ShiftEstimator,
    difference,
    gain_field,
    global_gain,
    gray,
    shadow_mask,
    texture,
    translate,
)
from edge.scene.regions import StaticRegions, boxes_mask, find_regions
from models.types import Image

F32 = npt.NDArray[Any]  # float32 pictures; OpenCV's stubs type results loosely
Mask = npt.NDArray[np.bool_]

HOLD_GROW = 0.1  # a person's box is widened by this share per side: arms and feet stick out
NUDGE_CHECK_FRACTION = 0.01  # look for a camera shift when the new share jumps by this much
NUDGE_CHECK_EVERY_S = 5.0  # ... and at least this often (a nudge in a plain scene changes little)
NUDGE_MIN_RESPONSE = 0.3  # phase correlation peak below this: no clear shift
NUDGE_GAIN = 1.0  # a followed shift must not leave more new pixels than before
NUDGE_REFINE_STEPS = 2
NUDGE_MIN_GAIN = 0.002  # ... and must explain at least this share of the picture
OBSTRUCTED_TEXTURE = 0.35  # a blocked lens keeps less than this share of the background's detail
DARK_LEVEL = 12.0  # mean grey level below this: the picture is black
MAX_STEP_S = 10.0  # a longer gap between pictures (reconnect) counts as this much


def share_of(new: Mask, free: Mask) -> float:
    """Share of the pixels outside people's boxes that are new."""
    return float(np.count_nonzero(new & free)) / max(1, int(np.count_nonzero(free)))


class SceneState(enum.StrEnum):
    LEARNING = "learning"
    WATCHING = "watching"
    VIEW_CHANGED = "view_changed"
    OBSTRUCTED = "obstructed"


@dataclass(frozen=True)
class SceneReading:
    """What one update found; `regions` are those standing now (held while the view is in doubt)."""

    ts: float
    state: SceneState
    regions: StaticRegions
    new_fraction: float  # share of the picture outside people that differs from the clean background
    relearned: bool
    elapsed_s: float


class SceneModel:
    """One camera's scene model; call `update` with pictures in time order, from one thread."""

    def __init__(
        self, settings: SceneSettings, perf_counter: Callable[[], float] = time.perf_counter
    ) -> None:
        self.settings = settings
        self._perf = perf_counter
        self.relearns = 0
        self.nudges = 0
        self._last_new_fraction = 0.0
        self._nudge_checked_ts: float | None = None
        self._size_wh: tuple[int, int] | None = None
        self._learning: list[tuple[F32, Mask]] = []
        self._learn_start: float | None = None
        self._long: F32 | None = None
        self._short: F32 | None = None
        self._evidence: F32 | None = None
        self._last_ts: float | None = None
        self._change_since: float | None = None
        self._state = SceneState.LEARNING
        self._regions = StaticRegions.empty()
        self._shift: ShiftEstimator | None = None
        self._background_texture = 0.0

    @property
    def state(self) -> SceneState:
        return self._state

    def background(self) -> Image | None:
        """The clean long-term background at working resolution (the "before" picture), or None."""
        if self._long is None:
            return None
        return np.clip(self._long, 0, 255).astype(np.uint8)

    def working_size(self, resolution_wh: tuple[int, int]) -> tuple[int, int]:
        w, h = resolution_wh
        width = min(self.settings.width_px, w)
        return width, max(8, round(h * width / w))

    def update(
        self, pixels: Image, ts: float, hold_xyxy: npt.NDArray[np.float32] | None = None
    ) -> SceneReading:
        """Advance to picture time `ts`. `hold_xyxy`: people's boxes (k, 4), normalised 0..1."""
        started = self._perf()
        size = self.working_size((pixels.shape[1], pixels.shape[0]))
        if size != self._size_wh:
            self._reset(size)
        small = self._scaled(pixels, size)
        hold = boxes_mask(
            hold_xyxy if hold_xyxy is not None else np.zeros((0, 4), np.float32), size, HOLD_GROW
        )
        dt = 0.0 if self._last_ts is None else float(np.clip(ts - self._last_ts, 0.0, MAX_STEP_S))
        self._last_ts = ts
        relearned = False
        new_fraction = 0.0
        if self._long is None:
            self._learn(small, hold, ts)
        else:
            new_fraction, relearned = self._watch(small, hold, ts, dt)
        return SceneReading(ts, self._state, self._regions, new_fraction, relearned, self._perf() - started)

    # --- learning ---

    def _reset(self, size_wh: tuple[int, int]) -> None:
        self._size_wh = size_wh
        self._shift = ShiftEstimator(size_wh)
        self._relearn()

    def _relearn(self) -> None:
        self._learning = []
        self._learn_start = None
        self._long = self._short = self._evidence = None
        self._change_since = None
        self._regions = StaticRegions.empty()
        self._state = SceneState.LEARNING

    def _learn(self, small: F32, hold: Mask, ts: float) -> None:
        if self._learn_start is None:
            self._learn_start = ts
        self._learning.append((small, hold))
        if ts - self._learn_start < self.settings.learn_s or len(self._learning) < min(
            3, 1 + int(self.settings.learn_s)
        ):
            return
        stack = np.stack([s for s, _ in self._learning])
        held = np.stack([h for _, h in self._learning])
        masked = np.where(held[..., None], np.nan, stack)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: filled below
            median = np.nanmedian(masked, axis=0)
        never_clear = np.isnan(median)
        if never_clear.any():
            median[never_clear] = np.median(stack, axis=0)[never_clear]
        self._long = median.astype(np.float32)
        self._short = self._long.copy()
        self._evidence = np.zeros(self._long.shape[:2], np.float32)
        self._background_texture = texture(gray(self._long))
        self._learning = []
        self._state = SceneState.WATCHING

    # --- watching ---

    def _watch(self, small: F32, hold: Mask, ts: float, dt: float) -> tuple[float, bool]:
        s = self.settings
        assert self._long is not None and self._short is not None and self._evidence is not None
        small_gray = gray(small)
        new_long = self._new_against_long(small, small_gray)
        free = ~hold
        new_fraction = share_of(new_long, free)
        jumped = new_fraction - self._last_new_fraction >= NUDGE_CHECK_FRACTION
        due = self._nudge_checked_ts is None or ts - self._nudge_checked_ts >= NUDGE_CHECK_EVERY_S
        if (jumped or due) and s.max_nudge_px > 0:
            self._nudge_checked_ts = ts
            new_long, new_fraction = self._follow_shift(small, small_gray, free, new_long, new_fraction)
        self._last_new_fraction = new_fraction

        covered = self._is_obstructed(small_gray)
        if new_fraction >= s.view_change_fraction or covered:
            if self._change_since is None:
                self._change_since = ts
            if ts - self._change_since < s.view_change_s:
                return new_fraction, False  # in doubt: hold everything as it is
            if covered:
                self._state = SceneState.OBSTRUCTED
                return new_fraction, False
            self._relearn()
            self.relearns += 1
            self._state = SceneState.VIEW_CHANGED
            self._learn(small, hold, ts)  # this picture is the first of the new view
            return new_fraction, True
        self._change_since = None
        self._state = SceneState.WATCHING

        short_gain = global_gain(small_gray, gray(self._short))
        new_short = difference(small, self._short * short_gain) > s.diff_threshold
        evidence = self._evidence
        evidence[new_long & ~new_short & free] += dt
        # Reset wherever the clean background shows again, people's boxes included: the pixels
        # around a passer-by that match it prove nothing stands there any more.
        evidence[~new_long] = 0.0
        absorbed = evidence >= s.absorb_after_s
        if absorbed.any():
            self._long[absorbed] = small[absorbed]
            evidence[absorbed] = 0.0

        # Short-term follows everything; long-term only what matches it, never people.
        a_short = 1.0 - float(np.exp(-dt / s.short_term_s))
        a_long = 1.0 - float(np.exp(-dt / s.long_term_s))
        cv2.accumulateWeighted(small, self._short, a_short)
        matches = (~new_long & free).astype(np.uint8)
        cv2.accumulateWeighted(small, self._long, a_long, mask=matches)
        self._regions = find_regions(evidence >= s.static_after_s, s.min_area, s.max_area)
        return new_fraction, False

    def _new_against_long(self, small: F32, small_gray: F32) -> Mask:
        assert self._long is not None
        gain = gain_field(small_gray, gray(self._long))
        # Saturation: a brightened background cannot look brighter than white.
        expected = np.minimum(self._long * gain[..., None], 255.0)
        differs = difference(small, expected) > self.settings.diff_threshold
        new: Mask = differs & ~shadow_mask(small, expected)
        return new

    def _follow_shift(
        self, small: F32, small_gray: F32, free: Mask, new_long: Mask, new_fraction: float
    ) -> tuple[Mask, float]:
        """Move backgrounds and evidence with a small camera shift, if one explains what is new.

        Checked when the new share jumps and every NUDGE_CHECK_EVERY_S; a shift is taken only
        when it leaves fewer new pixels (at least NUDGE_MIN_GAIN of the picture fewer), so an
        object arriving is never mistaken for the camera moving.
        """
        assert self._long is not None and self._short is not None and self._evidence is not None
        assert self._shift is not None
        dx, dy, response = self._shift.shift(gray(self._long), small_gray)
        distance = float(np.hypot(dx, dy))
        if response < NUDGE_MIN_RESPONSE or distance < 0.75 or distance > self.settings.max_nudge_px:
            return new_long, new_fraction
        for _ in range(NUDGE_REFINE_STEPS):  # what the half-resolution estimate left over
            rx, ry, _ = self._shift.refine(gray(translate(self._long, dx, dy, replicate=True)), small_gray)
            if np.hypot(rx, ry) < 0.1:
                break
            dx, dy = dx + rx, dy + ry
        kept = self._long
        self._long = translate(self._long, dx, dy, replicate=True)
        moved_new = self._new_against_long(small, small_gray)
        moved_fraction = share_of(moved_new, free)
        if moved_fraction > NUDGE_GAIN * new_fraction or new_fraction - moved_fraction < NUDGE_MIN_GAIN:
            self._long = kept
            return new_long, new_fraction
        self._short = translate(self._short, dx, dy, replicate=True)
        self._evidence = translate(self._evidence, dx, dy, replicate=False)
        self.nudges += 1
        return moved_new, moved_fraction

    def _is_obstructed(self, small_gray: F32) -> bool:
        if float(small_gray.mean()) < DARK_LEVEL:
            return True
        return texture(small_gray) < OBSTRUCTED_TEXTURE * self._background_texture

    @staticmethod
    def _scaled(pixels: Image, size_wh: tuple[int, int]) -> F32:
        if (pixels.shape[1], pixels.shape[0]) != size_wh:
            return cv2.resize(pixels, size_wh, interpolation=cv2.INTER_AREA).astype(np.float32)
        return pixels.astype(np.float32)
