"""One camera's class-agnostic eye: the scene model fed with pictures and people, merged into rows.

Live, the camera's capture thread `claim`s the pictures it decodes anyway (about one a second
with keyframe-only decoding, at most one per `interval_s`) and hands them, scaled, to the node's
one scene thread (edge.scene.worker), which runs `update`; `see_people` and `merge` run in the
detector thread. They share only small snapshots under a short lock, so the detector never
waits for the scene model. Offline (`curbwatch analyze`), `observe` does both on each frame.

On each *new* static region (not every frame) an optional text finder looks at its crop of
the full picture: a region with text is a `signboard`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.scene.config import SceneSettings
from edge.scene.merge import merge_static
from edge.scene.model import SceneModel, SceneReading, SceneState
from edge.scene.regions import StaticRegions
from models.classes import PEOPLE_CLASSES, SCENE_CLASSES, SIGNBOARD, STATIC_OBJECT
from models.postprocess import box_iou
from models.types import Detections, Frame, Image
from zones.schema import ZoneFile

HOLD_MIN_CONFIDENCE = 0.25  # people this sure hold evidence (the node detector's default cut)
SAME_REGION_IOU = 0.5  # a region this close to a labelled one is that one: no new text check
CROP_MARGIN = 0.1
MAX_LABELS = 64
BACKGROUND_EVERY_S = 10.0  # how often the "before" picture is copied out for evidence
EARLY_OK = 0.25  # a picture this share of interval_s early still counts (keyframes drift)


def used_by(zone_file: ZoneFile) -> bool:
    """Whether any zone counts `static object` or `signboard`: only then is the model worth its time."""
    return any(zone.classes & set(SCENE_CLASSES) for zone in zone_file.zones)


def goods_classes(zone_file: ZoneFile) -> frozenset[str]:
    """The detector classes some monitored zone counts: only these name a static region."""
    counted = (zone.classes for zone in zone_file.zones if zone.kind.value == "monitored")
    return frozenset().union(*counted) - set(SCENE_CLASSES)


class TextFinder(Protocol):
    def has_text(self, image: Image) -> bool: ...


@dataclass(frozen=True)
class SceneSnapshot:
    """What the detector thread reads: the latest reading and the clean background."""

    reading: SceneReading | None
    background: Image | None
    relearns: int


class StaticObjects:
    """The scene model of one camera and the merge of its regions into the detector's rows."""

    def __init__(
        self,
        settings: SceneSettings,
        text_finder: TextFinder | None = None,
        on_reading: Callable[[SceneReading], None] | None = None,
        goods: frozenset[str] | None = None,
    ) -> None:
        self.settings = settings
        self.goods = goods  # detector classes that name a region (goods_classes); None: all but people
        self.model = SceneModel(settings)
        self._text_finder = text_finder
        self._on_reading = on_reading or (lambda reading: None)
        self._lock = threading.Lock()
        self._updated = threading.Condition(self._lock)
        self._people = np.zeros((0, 4), np.float32)
        self._snapshot = SceneSnapshot(None, None, 0)
        self._last_ts: float | None = None
        self._background_ts: float | None = None
        self._labels: list[tuple[npt.NDArray[np.float32], str]] = []

    # --- capture side ---

    def wants(self, ts: float) -> bool:
        """Whether a picture at `ts` is due (at most one per interval_s)."""
        last = self._last_ts
        return last is None or ts < last or ts - last >= self.settings.interval_s * (1.0 - EARLY_OK)

    def claim(self, ts: float) -> bool:
        """`wants(ts)`, and if so the picture at `ts` is the one taken (the capture thread's check)."""
        if not self.wants(ts):
            return False
        self._last_ts = ts
        return True

    def offer(self, pixels: Image, ts: float) -> SceneReading | None:
        """Update with one picture if it is due; the people held are the detector's latest."""
        return self.update(pixels, ts) if self.claim(ts) else None

    def update(self, pixels: Image, ts: float) -> SceneReading:
        """Update with a picture already claimed (edge.scene.worker runs this for live cameras)."""
        with self._lock:
            people = self._people
        reading = self.model.update(pixels, ts, people)
        background = self._snapshot.background
        if (
            self._background_ts is None
            or abs(ts - self._background_ts) >= BACKGROUND_EVERY_S
            or reading.relearned
        ):
            background = self.model.background()
            self._background_ts = ts
        with self._lock:
            self._snapshot = SceneSnapshot(reading, background, self.model.relearns)
            self._updated.notify_all()
        self._on_reading(reading)
        return reading

    # --- detector side ---

    def see_people(self, detections: Detections, resolution_wh: tuple[int, int]) -> None:
        """Hold evidence under the detector's people (confident ones: a weak "person" on a pile of
        fruit would hide the pile for ever)."""
        if len(detections):
            sure = detections.class_mask(PEOPLE_CLASSES) & (detections.confidence >= HOLD_MIN_CONFIDENCE)
            people = detections[sure]
        else:
            people = detections
        w, h = resolution_wh
        normalised = (people.xyxy / np.array([w, h, w, h], np.float32)).astype(np.float32)
        with self._lock:
            self._people = normalised.reshape(-1, 4)

    def observe(self, frame: Frame, detections: Detections) -> SceneReading | None:
        """Offline: people of this frame's detections, then the update, in one step."""
        self.see_people(detections, frame.resolution_wh)
        return self.offer(frame.pixels, frame.ts)

    def wait_for(self, ts: float, timeout_s: float) -> bool:
        """Wait (bounded) until the model has processed every picture claimed up to time `ts`: a
        file replayed faster than real time must not be merged with regions of an earlier moment.
        Only claimed pictures count, so this never waits for the capture (which may be waiting
        for the detector)."""
        claimed = self._last_ts
        if claimed is None:
            return True
        target = min(ts, claimed)
        with self._updated:
            return self._updated.wait_for(
                lambda: self._snapshot.reading is not None and self._snapshot.reading.ts >= target, timeout_s
            )

    def snapshot(self) -> SceneSnapshot:
        with self._lock:
            return self._snapshot

    def regions(self) -> StaticRegions:
        reading = self.snapshot().reading
        if reading is None or reading.state is SceneState.LEARNING:
            return StaticRegions.empty()
        return reading.regions

    def merge(self, frame: Frame, detections: Detections) -> Detections:
        """`detections` with a `static object` / `signboard` row per static region it does not name."""
        regions = self.regions()
        if not len(regions):
            return merge_static(detections, np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        labels = self._label(frame, regions)
        pixels = regions.in_pixels(frame.resolution_wh)
        return merge_static(detections, pixels, regions.score, labels, self.goods)

    def _label(self, frame: Frame, regions: StaticRegions) -> list[str]:
        known = self._labels
        known_boxes = np.array([box for box, _ in known], np.float32).reshape(-1, 4)
        iou = box_iou(regions.xyxy, known_boxes) if len(known) else np.zeros((len(regions), 0), np.float32)
        labels: list[str] = []
        kept: list[tuple[npt.NDArray[np.float32], str]] = []
        for i, box in enumerate(regions.xyxy):
            j = int(np.argmax(iou[i])) if iou.shape[1] else -1
            same = j >= 0 and iou[i, j] >= SAME_REGION_IOU
            label = known[j][1] if same else self._read_label(frame, box)
            labels.append(label)
            kept.append((box.copy(), label))
        self._labels = kept[:MAX_LABELS]
        return labels

    def _read_label(self, frame: Frame, box: npt.NDArray[np.float32]) -> str:
        if self._text_finder is None:
            return STATIC_OBJECT
        w, h = frame.resolution_wh
        x1, y1, x2, y2 = (float(v) for v in box)
        mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
        c1, r1 = int(max(0.0, x1 - mx) * w), int(max(0.0, y1 - my) * h)
        c2, r2 = int(min(1.0, x2 + mx) * w), int(min(1.0, y2 + my) * h)
        crop = frame.pixels[r1:r2, c1:c2]
        if crop.size == 0:
            return STATIC_OBJECT
        return SIGNBOARD if self._text_finder.has_text(crop) else STATIC_OBJECT
