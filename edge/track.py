"""Stable ids across frames, and which tracked objects stand still.

ByteTrack's two-stage association (high-confidence detections first, then the
low-confidence ones against tracks that were seen last frame) without a motion
model: we sample about one frame a second and care about objects that do not
move, so the best prediction of where a box will be is where it was. That also
lets an object hidden by passers-by for tens of seconds be found again by IoU
with its last box (`lost_track_buffer_s`, in seconds, not frames).

Matching is greedy on IoU within each class, numpy only: stationary objects
overlap their own last box with IoU near 1, so greedy and Hungarian agree in
the scenes we see, and we avoid scipy on the edge box. supervision's ByteTrack
was not used: it counts its buffer in frames and writes into its input.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.postprocess import box_iou
from models.types import BoolArray, Detections, FloatArray, IntArray


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of the tracker; times in seconds."""

    high_confidence: float = 0.35  # first stage, and the least confidence that starts a track
    low_confidence: float = 0.1  # second stage: detections below this are ignored
    match_iou: float = 0.3  # least IoU between a detection and a track's last box
    lost_track_buffer_s: float = 60.0  # a track unseen this long is forgotten
    stationary_window_s: float = 5.0  # how long a track must be watched to call it stationary
    stationary_max_shift: float = 0.3  # max centre shift over the window, in box sizes
    max_tracks: int = 1024  # hard cap on remembered tracks (oldest lost ones go first)

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_confidence <= self.high_confidence <= 1.0:
            raise ValueError("TrackerConfig: expected 0 <= low_confidence <= high_confidence <= 1")
        if not 0.0 < self.match_iou <= 1.0:
            raise ValueError(f"TrackerConfig.match_iou: expected 0 < x <= 1, got {self.match_iou}")
        for name in ("lost_track_buffer_s", "stationary_window_s", "stationary_max_shift"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrackerConfig.{name}: expected > 0, got {getattr(self, name)}")
        if self.max_tracks < 1:
            raise ValueError(f"TrackerConfig.max_tracks: expected >= 1, got {self.max_tracks}")


@dataclass(frozen=True, eq=False)
class TrackedFrame:
    """The tracker's answer for one frame: parallel to `detections`.

    `detections` carries `tracker_id`; detections that matched no track and were
    too weak to start one are left out. `first_seen_ts` is when each track was
    first seen, `stationary` whether its box stayed put over the last
    `stationary_window_s` seconds (False while it has not been watched that long).
    """

    detections: Detections
    stationary: BoolArray
    first_seen_ts: npt.NDArray[np.float64]
    ts: float

    def __post_init__(self) -> None:
        n = len(self.detections)
        if self.detections.tracker_id is None:
            raise ValueError("TrackedFrame.detections: expected tracker_id to be set")
        for name in ("stationary", "first_seen_ts"):
            array = getattr(self, name)
            if array.shape != (n,):
                raise ValueError(f"TrackedFrame.{name}: expected ({n},), got {array.shape}")
            view = array.view()
            view.flags.writeable = False
            object.__setattr__(self, name, view)

    @classmethod
    def empty(cls, class_names: tuple[str, ...], ts: float) -> TrackedFrame:
        detections = Detections.empty(class_names).with_tracker_id(np.zeros(0, np.int64))
        return cls(detections, np.zeros(0, bool), np.zeros(0, np.float64), ts)


# Samples kept per track: enough to span the stationary window at any frame rate.
_HISTORY_SAMPLES = 32


class _Track:
    """One object's memory; private to the tracker and bounded in size."""

    __slots__ = (
        "class_id", "first_seen_ts", "history", "last_seen_ts", "seen_last_frame", "track_id", "xyxy",
    )  # fmt: skip

    def __init__(self, track_id: int, class_id: int, xyxy: np.ndarray, ts: float) -> None:
        self.track_id = track_id
        self.class_id = class_id
        self.xyxy = xyxy
        self.first_seen_ts = ts
        self.last_seen_ts = ts
        self.seen_last_frame = True
        # (ts, centre x, centre y); thinned so it spans the window with few samples.
        self.history: deque[tuple[float, float, float]] = deque(maxlen=_HISTORY_SAMPLES)
        self.history.append((ts, *_centre(xyxy)))

    def observe(self, xyxy: np.ndarray, ts: float, window_s: float) -> None:
        self.xyxy = xyxy
        self.last_seen_ts = ts
        self.seen_last_frame = True
        # Keep a sample at most every window/(N-2) seconds so N samples span the window
        # at any frame rate; the newest box is always self.xyxy.
        if ts - self.history[-1][0] >= window_s / (_HISTORY_SAMPLES - 2):
            self.history.append((ts, *_centre(xyxy)))
        # Drop samples older than the window, but keep the newest of those as the anchor
        # that proves the window is covered.
        while len(self.history) >= 2 and self.history[1][0] <= ts - window_s:
            self.history.popleft()

    def is_stationary(self, window_s: float, max_shift: float) -> bool:
        if self.history[0][0] > self.last_seen_ts - window_s:
            return False  # not watched long enough to tell
        cx, cy = _centre(self.xyxy)
        w = float(self.xyxy[2] - self.xyxy[0])
        h = float(self.xyxy[3] - self.xyxy[1])
        size = max(float(np.sqrt(max(w, 0.0) * max(h, 0.0))), 1.0)
        return all(np.hypot(x - cx, y - cy) <= max_shift * size for _, x, y in self.history)


def _centre(xyxy: np.ndarray) -> tuple[float, float]:
    return float(xyxy[0] + xyxy[2]) / 2.0, float(xyxy[1] + xyxy[3]) / 2.0


def greedy_match(iou: FloatArray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (row, col), best IoU first, each row and column used once, IoU >= min_iou."""
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= min_iou)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return pairs


class Tracker:
    """Per-camera tracker. `update` once per sampled frame, in timestamp order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1
        self._last_ts: float | None = None

    def __len__(self) -> int:
        """Tracks remembered now (active and lost)."""
        return len(self._tracks)

    def update(self, detections: Detections, ts: float) -> TrackedFrame:
        """Associate `detections` seen at `ts` (seconds) with the tracks; never mutates the input."""
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError(f"Tracker.update: ts went backwards ({ts} < {self._last_ts})")
        self._last_ts = ts
        cfg = self.config
        n = len(detections)
        assigned = np.full(n, -1, np.int64)
        was_seen = {tid for tid, t in self._tracks.items() if t.seen_last_frame}
        for track in self._tracks.values():
            track.seen_last_frame = False

        xyxy = np.asarray(detections.xyxy, np.float32)
        by_class: dict[int, list[_Track]] = {}
        for track in self._tracks.values():
            by_class.setdefault(track.class_id, []).append(track)
        for class_id in np.unique(detections.class_id) if n else []:
            in_class = detections.class_id == class_id
            high = np.flatnonzero(in_class & (detections.confidence >= cfg.high_confidence))
            low = np.flatnonzero(
                in_class
                & (detections.confidence < cfg.high_confidence)
                & (detections.confidence >= cfg.low_confidence)
            )
            candidates = by_class.get(int(class_id), [])
            # Stage 1: strong detections against every remembered track of the class, lost ones too.
            unmatched = self._associate(high, candidates, xyxy, ts, assigned)
            # Stage 2: weak detections only keep alive tracks that were seen last frame.
            self._associate(low, [t for t in unmatched if t.track_id in was_seen], xyxy, ts, assigned)
            for i in high:
                if assigned[i] < 0:
                    track = _Track(self._next_id, int(class_id), xyxy[i].copy(), ts)
                    self._next_id += 1
                    self._tracks[track.track_id] = track
                    assigned[i] = track.track_id

        keep = assigned >= 0
        tracked = detections[keep].with_tracker_id(assigned[keep])
        ids = assigned[keep]
        window_s, max_shift = cfg.stationary_window_s, cfg.stationary_max_shift
        stationary = np.array([self._tracks[int(t)].is_stationary(window_s, max_shift) for t in ids], bool)
        first_seen = np.array([self._tracks[int(t)].first_seen_ts for t in ids], dtype=np.float64)
        self._evict(ts)
        return TrackedFrame(tracked, stationary.reshape(-1), first_seen.reshape(-1), ts)

    def _associate(
        self, rows: IntArray, tracks: list[_Track], xyxy: FloatArray, ts: float, assigned: IntArray
    ) -> list[_Track]:
        """Match detections `rows` to `tracks`; return the tracks left unmatched."""
        if len(rows) == 0 or not tracks:
            return tracks
        last_boxes = np.stack([t.xyxy for t in tracks]).astype(np.float32)
        pairs = greedy_match(box_iou(xyxy[rows], last_boxes), self.config.match_iou)
        matched = set()
        for r, c in pairs:
            tracks[c].observe(xyxy[rows[r]].copy(), ts, self.config.stationary_window_s)
            assigned[rows[r]] = tracks[c].track_id
            matched.add(c)
        return [t for c, t in enumerate(tracks) if c not in matched]

    def _evict(self, ts: float) -> None:
        horizon = ts - self.config.lost_track_buffer_s
        for tid in [tid for tid, t in self._tracks.items() if t.last_seen_ts < horizon]:
            del self._tracks[tid]
        excess = len(self._tracks) - self.config.max_tracks
        if excess > 0:
            # Lost tracks first, then the least recently seen.
            oldest = sorted(self._tracks.values(), key=lambda t: (t.seen_last_frame, t.last_seen_ts))
            for track in oldest[:excess]:
                del self._tracks[track.track_id]
