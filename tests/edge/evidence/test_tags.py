"""Number tags of evidence boxes: one box per object, tags inside the picture and never overlapping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pytest

from edge.evidence.tags import TAG_GAP_PX, Rect, one_per_object, place_tags

W, H = 768, 576
TAG = (22, 18)  # about the size render draws "12" at in a 768x576 frame
HEADER: Rect = (0, 0, 380, 22)


@dataclass(frozen=True)
class Obj:
    label: str
    confidence: float
    xyxy: tuple[float, float, float, float]
    tracker_id: int | None = None


def assert_disjoint_and_inside(rects: list[Rect], reserved: Sequence[Rect] = ()) -> None:
    for x1, y1, x2, y2 in rects:
        assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H, (x1, y1, x2, y2)
    for a, b in combinations([*rects, *reserved], 2):
        apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        assert apart, f"tags {a} and {b} overlap"


def crowded(seed: int, n: int) -> list[Rect]:
    rng = np.random.default_rng(seed)
    boxes = []
    for _ in range(n):
        x, y = rng.uniform(-20, W - 30), rng.uniform(-20, H - 30)
        w, h = rng.uniform(8, 120), rng.uniform(8, 120)
        boxes.append((round(x), round(y), round(x + w), round(y + h)))
    return boxes


@pytest.mark.parametrize(("seed", "n"), [(1, 10), (2, 40), (3, 100)])
def test_crowded_tags_are_disjoint_and_inside_the_picture(seed: int, n: int) -> None:
    boxes = crowded(seed, n)
    rects = place_tags(boxes, [TAG] * n, (W, H), reserved=[HEADER])
    assert len(rects) == n
    assert_disjoint_and_inside(rects, [HEADER])
    # Not just disjoint: the gap is kept, so two tags never read as one number.
    for a, b in combinations(rects, 2):
        assert (
            a[2] + TAG_GAP_PX <= b[0]
            or b[2] + TAG_GAP_PX <= a[0]
            or a[3] + TAG_GAP_PX <= b[1]
            or b[3] + TAG_GAP_PX <= a[1]
        )


def test_identical_boxes_piled_on_one_spot_get_separate_tags() -> None:
    boxes = [(300, 300, 360, 380)] * 12 + [(302, 301, 361, 379)] * 12
    rects = place_tags(boxes, [TAG] * len(boxes), (W, H))
    assert_disjoint_and_inside(rects)
    # The shifted ones stay near their box, not somewhere across the picture.
    assert max(abs(r[0] - 300) + abs(r[1] - 300) for r in rects) < 200


@pytest.mark.parametrize(
    ("name", "box", "expected"),
    [
        ("free: above-left", (200, 200, 300, 300), (200, 182, 222, 200)),
        ("at the top edge: inside top-left (not off the picture)", (200, 0, 300, 100), (200, 0, 222, 18)),
        ("at the right edge: pulled in", (750, 200, 790, 300), (746, 182, 768, 200)),
        ("in the bottom-left corner", (-10, 560, 40, 600), (0, 542, 22, 560)),
    ],
)
def test_a_lone_tag_takes_the_first_place_that_fits(name: str, box: Rect, expected: Rect) -> None:
    assert place_tags([box], [TAG], (W, H)) == [expected], name


def test_the_next_tag_goes_below_when_above_is_taken() -> None:
    upper, lower = (200, 200, 300, 300), (200, 215, 300, 330)  # lower's above-left is upper's tag
    first, second = place_tags([upper, lower], [TAG, TAG], (W, H))
    assert first == (200, 182, 222, 200)
    assert second == (200, 330, 222, 348)  # below-left of its own box


def test_the_header_is_never_covered() -> None:
    rects = place_tags([(10, 5, 60, 60)], [TAG], (W, H), reserved=[HEADER])
    assert_disjoint_and_inside(rects, [HEADER])


@pytest.mark.parametrize(
    ("boxes", "sizes", "image_wh", "message"),
    [
        ([(0, 0, 1, 1)], [], (W, H), "1 boxes but 0 tag sizes"),
        ([(0, 0, 1, 1)], [TAG], (0, H), "image_wh must be positive"),
    ],
)
def test_bad_input_is_refused_with_the_reason(
    boxes: list[Rect], sizes: list[tuple[int, int]], image_wh: tuple[int, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        place_tags(boxes, sizes, image_wh)


def test_one_box_per_object_most_confident_first() -> None:
    objects = [
        Obj("bicycle", 0.34, (100, 300, 220, 400), tracker_id=4),
        Obj("bicycle", 0.52, (104, 303, 223, 398), tracker_id=5),  # near-identical: same bicycle
        Obj("chair", 0.60, (400, 300, 460, 380), tracker_id=7),
        Obj("chair", 0.41, (430, 320, 500, 390), tracker_id=7),  # the same track drawn twice
        Obj("bench", 0.45, (402, 302, 461, 379)),  # another label, the chair's box: one object
        Obj("bicycle", 0.30, (120, 320, 170, 380)),  # inside the bicycle, same label: duplicate
        Obj("dining table", 0.70, (600, 300, 700, 420)),
        Obj("chair", 0.50, (610, 330, 650, 400)),  # a chair at the table: its own object
    ]
    kept = one_per_object(objects)
    assert [(o.label, o.confidence) for o in kept] == [
        ("dining table", 0.70),
        ("chair", 0.60),
        ("bicycle", 0.52),
        ("chair", 0.50),
    ]
    assert len(objects) == 8  # the input is not changed


def test_objects_without_tracker_ids_are_told_apart_by_their_boxes() -> None:
    objects = [Obj("chair", 0.5, (0, 0, 10, 10)), Obj("chair", 0.6, (50, 50, 60, 60))]
    assert one_per_object(objects) == (objects[1], objects[0])
    assert one_per_object([]) == ()
