from __future__ import annotations

import numpy as np
import pytest

from edge.track import Tracker, TrackerConfig, greedy_match
from models.classes import COCO_CLASSES
from models.postprocess import box_iou
from models.types import Detections

CHAIR = COCO_CLASSES.index("chair")
PERSON = COCO_CLASSES.index("person")
BICYCLE = COCO_CLASSES.index("bicycle")


def dets(*rows: tuple[float, float, float, float, float, int]) -> Detections:
    """rows of (x1, y1, x2, y2, confidence, class_id)."""
    if not rows:
        return Detections.empty(COCO_CLASSES)
    a = np.array(rows, dtype=np.float64)
    return Detections(a[:, :4], a[:, 4], a[:, 5].astype(np.int64), COCO_CLASSES)


def ids(frame) -> list[int]:
    return [int(i) for i in frame.detections.tracker_id]


def test_stationary_object_keeps_its_id_and_becomes_stationary_after_the_window_in_seconds() -> None:
    tracker = Tracker(TrackerConfig(stationary_window_s=5.0))
    flags = []
    for t in range(0, 10):
        out = tracker.update(dets((100, 100, 160, 160, 0.8, CHAIR)), float(t))
        assert ids(out) == [1]
        flags.append(bool(out.stationary[0]))
        assert out.first_seen_ts[0] == 0.0
    assert flags == [False] * 5 + [True] * 5


@pytest.mark.parametrize("fps", [1.0, 5.0, 25.0])
def test_stationary_depends_on_seconds_not_frame_count(fps: float) -> None:
    tracker = Tracker(TrackerConfig(stationary_window_s=4.0))
    became = None
    for k in range(int(10 * fps)):
        t = k / fps
        out = tracker.update(dets((100, 100, 160, 160, 0.8, CHAIR)), t)
        if became is None and out.stationary[0]:
            became = t
    assert became == pytest.approx(4.0)


def test_a_cyclist_riding_through_keeps_one_id_and_is_never_stationary() -> None:
    tracker = Tracker(TrackerConfig(stationary_window_s=3.0))
    for t in range(12):
        x = 50 + 25 * t  # 0.25 box widths a second: overlaps itself, still moves
        out = tracker.update(dets((x, 200, x + 100, 260, 0.9, BICYCLE)), float(t))
        assert ids(out) == [1]
        assert not out.stationary[0]


def test_jitter_below_the_threshold_is_still_stationary() -> None:
    tracker = Tracker(TrackerConfig(stationary_window_s=3.0, stationary_max_shift=0.3))
    rng = np.random.default_rng(0)
    out = None
    for t in range(8):
        dx, dy = rng.uniform(-4, 4, 2)
        out = tracker.update(dets((100 + dx, 100 + dy, 160 + dx, 160 + dy, 0.8, CHAIR)), float(t))
    assert out is not None and out.stationary[0]


@pytest.mark.parametrize(
    ("buffer_s", "gap_s", "same_id"),
    [(60.0, 40.0, True), (60.0, 59.0, True), (30.0, 40.0, False)],
)
def test_occluded_object_is_found_again_within_the_lost_buffer(
    buffer_s: float, gap_s: float, same_id: bool
) -> None:
    tracker = Tracker(TrackerConfig(lost_track_buffer_s=buffer_s))
    for t in range(5):
        first = tracker.update(dets((100, 100, 160, 160, 0.8, CHAIR)), float(t))
    for t in range(5, int(5 + gap_s)):  # people pass in front: the chair is not detected
        tracker.update(dets((90 + t, 50, 150 + t, 250, 0.9, PERSON)), float(t))
    back = tracker.update(dets((102, 98, 161, 162, 0.7, CHAIR)), 5.0 + gap_s)
    assert (ids(back)[0] == ids(first)[0]) is same_id
    if same_id:
        assert back.first_seen_ts[0] == 0.0


def test_classes_never_share_a_track() -> None:
    tracker = Tracker()
    tracker.update(dets((100, 100, 160, 160, 0.8, CHAIR)), 0.0)
    out = tracker.update(dets((100, 100, 160, 160, 0.9, PERSON)), 1.0)
    assert ids(out) == [2]


def test_weak_detection_keeps_a_seen_track_alive_but_never_starts_or_revives_one() -> None:
    tracker = Tracker(TrackerConfig(high_confidence=0.5, low_confidence=0.1))
    tracker.update(dets((100, 100, 160, 160, 0.8, CHAIR)), 0.0)
    kept = tracker.update(dets((101, 100, 161, 160, 0.2, CHAIR)), 1.0)
    assert ids(kept) == [1]
    weak_new = tracker.update(dets((101, 100, 161, 160, 0.2, CHAIR), (400, 400, 450, 450, 0.2, CHAIR)), 2.0)
    assert ids(weak_new) == [1]  # the weak one elsewhere is dropped
    tracker.update(dets(), 3.0)  # track 1 now lost
    revived = tracker.update(dets((101, 100, 161, 160, 0.2, CHAIR)), 4.0)
    assert ids(revived) == []
    too_weak = tracker.update(dets((101, 100, 161, 160, 0.05, CHAIR)), 5.0)
    assert len(too_weak.detections) == 0


def test_two_nearby_objects_keep_distinct_ids() -> None:
    tracker = Tracker()
    for t in range(5):
        out = tracker.update(
            dets((100, 100, 160, 160, 0.8, CHAIR), (170, 100, 230, 160, 0.7, CHAIR)), float(t)
        )
    assert ids(out) == [1, 2]


def test_stale_tracks_are_evicted_and_memory_is_bounded() -> None:
    tracker = Tracker(TrackerConfig(lost_track_buffer_s=10.0, max_tracks=50))
    for t in range(1000):  # a new object every second, each seen once: days of churn in miniature
        x = (t * 37) % 700
        tracker.update(dets((x, 300, x + 20, 320, 0.9, CHAIR)), float(t))
        assert len(tracker) <= 11
    crowded = Tracker(TrackerConfig(max_tracks=5))
    many = dets(*[(i * 30.0, 0.0, i * 30.0 + 20, 20.0, 0.9, CHAIR) for i in range(8)])
    out = crowded.update(many, 0.0)
    assert len(out.detections) == 8 and len(crowded) == 5


def test_update_never_mutates_its_input_and_outputs_are_read_only() -> None:
    tracker = Tracker()
    d = dets((100, 100, 160, 160, 0.8, CHAIR), (10, 10, 50, 90, 0.6, PERSON))
    before = (d.xyxy.copy(), d.confidence.copy(), d.class_id.copy())
    out = tracker.update(d, 0.0)
    assert d.tracker_id is None
    np.testing.assert_array_equal(d.xyxy, before[0])
    np.testing.assert_array_equal(d.confidence, before[1])
    np.testing.assert_array_equal(d.class_id, before[2])
    assert out.detections is not d
    with pytest.raises(ValueError):
        out.stationary[0] = True


def test_time_must_not_go_backwards() -> None:
    tracker = Tracker()
    tracker.update(dets(), 5.0)
    with pytest.raises(ValueError, match="backwards"):
        tracker.update(dets(), 4.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"low_confidence": 0.6, "high_confidence": 0.5}, "low_confidence"),
        ({"match_iou": 0.0}, "match_iou"),
        ({"lost_track_buffer_s": 0.0}, "lost_track_buffer_s"),
        ({"max_tracks": 0}, "max_tracks"),
    ],
)
def test_config_is_validated(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**kwargs)  # type: ignore[arg-type]


def test_greedy_match_takes_the_best_pairs_first() -> None:
    a = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    b = np.array([[21, 0, 31, 10], [1, 0, 11, 10], [100, 100, 110, 110]], np.float32)
    iou = box_iou(a, b)
    assert sorted(greedy_match(iou, 0.3)) == [(0, 1), (1, 0)]
    assert greedy_match(np.zeros((0, 3), np.float32), 0.3) == []
