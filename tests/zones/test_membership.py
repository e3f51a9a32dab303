"""ZoneMembership: which detections count in which monitored zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from models.classes import COCO_CLASSES
from models.types import Detections
from zones.membership import ZoneMembership
from zones.schema import ZoneFile

RESOLUTION_WH = (1000, 500)
MONDAY_NOON = dt.datetime(2025, 5, 5, 12, 0, tzinfo=dt.UTC)  # 20:00 in Shanghai
CHAIR, PERSON, BENCH, TABLE = (COCO_CLASSES.index(n) for n in ("chair", "person", "bench", "dining table"))

# Left and right halves of the bottom half of the frame: x 0-500 / 500-1000, y 250-500 px.
LEFT = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
RIGHT = [[0.5, 0.5], [1.0, 0.5], [1.0, 1.0], [0.5, 1.0]]


def monitored(zone_id: str, polygon: list[list[float]], **extra: Any) -> dict[str, Any]:
    return {
        "id": zone_id,
        "kind": "monitored",
        "polygon": polygon,
        "shop": {"id": f"shop-{zone_id}", "name": "S"},
    } | extra


def exempt(zone_id: str, polygon: list[list[float]], **extra: Any) -> dict[str, Any]:
    return {"id": zone_id, "kind": "exempt", "polygon": polygon} | extra


def membership(*zones: dict[str, Any], known: Sequence[str] | None = None) -> ZoneMembership:
    context = {"known_classes": known} if known else None
    zone_file = ZoneFile.model_validate({"camera_id": "cam", "zones": list(zones)}, context=context)
    return ZoneMembership(zone_file, RESOLUTION_WH)


def detections(*rows: Sequence[float], names: Sequence[str] = COCO_CLASSES) -> Detections:
    """rows of (x1, y1, x2, y2, class_id, confidence) in pixels."""
    array = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return Detections(
        array[:, :4].astype(np.float32),
        array[:, 5].astype(np.float32),
        array[:, 4].astype(np.int64),
        tuple(names),
    )


def masks(result: dict[str, Any]) -> dict[str, list[bool]]:
    return {zone_id: check.mask.tolist() for zone_id, check in result.items()}


def box_with_footprint(
    x1: float, x2: float, foot_top: float, foot_bottom: float
) -> tuple[float, float, float, float]:
    """A box whose bottom quarter (the footprint) spans foot_top..foot_bottom."""
    height = 4 * (foot_bottom - foot_top)
    return (x1, foot_bottom - height, x2, foot_bottom)


CASES = [
    pytest.param([monitored("a", LEFT)], [(100, 300, 200, 400, CHAIR, 0.9)], {"a": [True]}, id="inside"),
    pytest.param([monitored("a", LEFT)], [(600, 300, 700, 400, CHAIR, 0.9)], {"a": [False]}, id="outside"),
    pytest.param([monitored("a", LEFT)], [(100, 300, 200, 400, PERSON, 0.9)], {"a": [False]}, id="person"),
    pytest.param(
        [monitored("a", LEFT)], [(100, 300, 200, 400, CHAIR, 0.2)], {"a": [False]}, id="low-confidence"
    ),
    pytest.param(
        [monitored("a", LEFT, min_confidence=0.1)],
        [(100, 300, 200, 400, CHAIR, 0.2)],
        {"a": [True]},
        id="own-threshold",
    ),
    pytest.param(  # footprint 60% left of x=500: counts in the left zone only
        [monitored("a", LEFT), monitored("b", RIGHT)],
        [(440, 300, 540, 400, CHAIR, 0.9)],
        {"a": [True], "b": [False]},
        id="straddling-zones",
    ),
    pytest.param(  # 60/40 with min_overlap 0.3 qualifies in both, counts once: where most of it is
        [monitored("a", LEFT, min_overlap=0.3), monitored("b", RIGHT, min_overlap=0.3)],
        [(440, 300, 540, 400, CHAIR, 0.9), (460, 300, 560, 400, CHAIR, 0.9)],
        {"a": [True, False], "b": [False, True]},
        id="one-object-one-zone",
    ),
    pytest.param(  # an exact tie goes to the zone listed first
        [monitored("a", LEFT), monitored("b", RIGHT)],
        [(450, 300, 550, 400, CHAIR, 0.9)],
        {"a": [True], "b": [False]},
        id="tie-file-order",
    ),
    pytest.param(  # the box top is in the zone, where it stands is not
        [monitored("a", [[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]])],
        [box_with_footprint(100, 200, 260, 300)],
        {"a": [False]},
        id="footprint-not-box",
    ),
    pytest.param(  # the feet are in the zone, most of the box is not
        [monitored("a", LEFT)],
        [box_with_footprint(100, 200, 260, 300)],
        {"a": [True]},
        id="feet-in-zone",
    ),
    pytest.param(  # zone reaches the frame's bottom; the footprint lies below the frame
        [monitored("a", LEFT)],
        [(100, 460, 200, 540, CHAIR, 0.9)],
        {"a": [False]},
        id="not-clipped-to-frame",
    ),
    pytest.param(
        [monitored("a", LEFT, max_area=0.01)],
        [(100, 300, 200, 400, CHAIR, 0.9), (100, 300, 150, 350, CHAIR, 0.9)],
        {"a": [False, True]},  # 10000 px = 2% of the frame vs 2500 px = 0.5%
        id="max-area",
    ),
    pytest.param(
        [monitored("a", LEFT, min_area=0.01)],
        [(100, 300, 200, 400, CHAIR, 0.9), (100, 300, 150, 350, CHAIR, 0.9)],
        {"a": [True, False]},
        id="min-area",
    ),
    pytest.param(
        [monitored("a", LEFT, classes=["bench"])],
        [(100, 300, 200, 400, CHAIR, 0.9), (100, 300, 200, 400, BENCH, 0.9)],
        {"a": [False, True]},
        id="zone-classes",
    ),
]


@pytest.mark.parametrize(("zones", "rows", "expected"), CASES)
def test_membership(zones: list[dict[str, Any]], rows: list[Any], expected: dict[str, list[bool]]) -> None:
    rows = [row if len(row) == 6 else (*row, CHAIR, 0.9) for row in rows]
    assert masks(membership(*zones).evaluate(detections(*rows), MONDAY_NOON)) == expected


def test_overlap_is_reported_whatever_the_filters() -> None:
    result = membership(monitored("a", LEFT), monitored("b", RIGHT)).evaluate(
        detections((440, 300, 540, 400, PERSON, 0.1)), MONDAY_NOON
    )
    assert result["a"].overlap.dtype == np.float32
    np.testing.assert_allclose([result["a"].overlap[0], result["b"].overlap[0]], [0.6, 0.4], rtol=1e-6)
    assert not result["a"].mask.any()


# The exempt cafe area covers x 0-250 of the left zone.
CAFE = [[0.0, 0.5], [0.25, 0.5], [0.25, 1.0], [0.0, 1.0]]
IN_CAFE = (50, 300, 150, 400)
OFF_DUTY = {"weekly": [{"days": ["sun"], "start": "00:00", "end": "01:00"}]}


@pytest.mark.parametrize(
    ("cafe", "row", "counted"),
    [
        (exempt("cafe", CAFE), (*IN_CAFE, CHAIR, 0.9), False),
        (exempt("cafe", CAFE), (300, 300, 400, 400, CHAIR, 0.9), True),  # beside the cafe
        (exempt("cafe", CAFE), (200, 300, 300, 400, CHAIR, 0.9), False),  # half in it is enough
        (exempt("cafe", CAFE, min_overlap=0.8), (200, 300, 300, 400, CHAIR, 0.9), True),
        (exempt("cafe", CAFE, classes=["dining table"]), (*IN_CAFE, CHAIR, 0.9), True),  # tables only
        (exempt("cafe", CAFE, classes=["dining table"]), (*IN_CAFE, TABLE, 0.9), False),
        (exempt("cafe", CAFE, schedule=OFF_DUTY), (*IN_CAFE, CHAIR, 0.9), True),  # licence not in force
    ],
)
def test_exempt_zone(cafe: dict[str, Any], row: tuple[float, ...], counted: bool) -> None:
    result = membership(monitored("a", LEFT), cafe).evaluate(detections(row), MONDAY_NOON)
    assert list(result) == ["a"]  # exempt zones have no verdict of their own
    assert result["a"].mask.tolist() == [counted]


BENCH_FIXTURE = {"class": "bench", "box": [0.1, 0.6, 0.2, 0.8], "tolerance": 0.5}  # 100-200 x 300-400 px


@pytest.mark.parametrize(
    ("row", "counted"),
    [
        ((100, 300, 200, 400, BENCH, 0.9), False),  # the city bench itself
        ((110, 305, 205, 400, BENCH, 0.9), False),  # jitter of the detector
        ((160, 300, 260, 400, BENCH, 0.9), True),  # IoU 0.25: another bench next to it
        ((100, 300, 200, 400, CHAIR, 0.9), True),  # a chair put where the bench is
    ],
)
def test_fixture(row: tuple[float, ...], counted: bool) -> None:
    zone = monitored("a", LEFT, fixtures=[BENCH_FIXTURE])
    assert membership(zone).evaluate(detections(row), MONDAY_NOON)["a"].mask.tolist() == [counted]


def test_fixture_only_in_its_own_zone() -> None:
    other = monitored("b", RIGHT, fixtures=[{"class": "bench", "box": [0.1, 0.6, 0.2, 0.8]}])
    result = membership(monitored("a", LEFT), other).evaluate(
        detections((100, 300, 200, 400, BENCH, 0.9)), MONDAY_NOON
    )
    assert masks(result) == {"a": [True], "b": [False]}


def test_inactive_zone_reports_nothing_and_hands_nothing_on() -> None:
    zones = membership(
        monitored("a", LEFT, min_overlap=0.3, schedule=OFF_DUTY), monitored("b", RIGHT, min_overlap=0.3)
    )
    result = zones.evaluate(detections((440, 300, 540, 400, CHAIR, 0.9)), MONDAY_NOON)
    assert (result["a"].active, result["b"].active) == (False, True)
    assert masks(result) == {"a": [False], "b": [False]}
    assert result["a"].overlap[0] == pytest.approx(0.6)


def test_schedule_follows_the_time_zone() -> None:
    evening = {"weekly": [{"days": ["mon"], "start": "19:00", "end": "21:00"}]}
    zones = membership(monitored("a", LEFT, schedule=evening))
    row = (100, 300, 200, 400, CHAIR, 0.9)
    assert zones.evaluate(detections(row), MONDAY_NOON)["a"].active  # 20:00 in Shanghai
    later = MONDAY_NOON + dt.timedelta(hours=2)
    assert not zones.evaluate(detections(row), later)["a"].active
    assert zones.evaluate(detections(row), MONDAY_NOON)["a"].active  # and back: no stale cache


def test_resolution_does_not_change_the_verdict() -> None:
    zone_file = ZoneFile.model_validate({"camera_id": "c", "zones": [monitored("a", LEFT)]})
    for width, height in ((1000, 500), (1920, 1080), (640, 360)):
        box = np.array([[0.1 * width, 0.6 * height, 0.2 * width, 0.8 * height]])
        found = Detections(box, np.array([0.9]), np.array([CHAIR]), COCO_CLASSES)
        check = ZoneMembership(zone_file, (width, height)).evaluate(found, MONDAY_NOON)["a"]
        assert check.mask.tolist() == [True]
        assert check.overlap[0] == pytest.approx(1.0)


def test_custom_model_class_names() -> None:
    names = ("shelf", "crate", "person")
    zones = membership(monitored("a", LEFT, classes=["shelf"]), known=names)
    found = detections((100, 300, 200, 400, 0, 0.9), (250, 300, 350, 400, 1, 0.9), names=names)
    assert masks(zones.evaluate(found, MONDAY_NOON)) == {"a": [True, False]}


def test_empty_detections_and_no_monitored_zone() -> None:
    result = membership(monitored("a", LEFT)).evaluate(Detections.empty(COCO_CLASSES), MONDAY_NOON)
    assert result["a"].mask.shape == (0,) and result["a"].overlap.shape == (0,)
    only_exempt = ZoneFile.model_validate({"camera_id": "c", "zones": [exempt("x", LEFT)]})
    assert (
        ZoneMembership(only_exempt, RESOLUTION_WH).evaluate(detections((0, 0, 1, 1, 0, 1)), MONDAY_NOON) == {}
    )


def test_input_is_not_mutated() -> None:
    found = detections((440, 300, 540, 400, CHAIR, 0.9), (100, 300, 200, 400, BENCH, 0.5))
    before = (found.xyxy.copy(), found.confidence.copy(), found.class_id.copy())
    membership(monitored("a", LEFT, fixtures=[BENCH_FIXTURE]), monitored("b", RIGHT)).evaluate(
        found, MONDAY_NOON
    )
    for array, copy in zip((found.xyxy, found.confidence, found.class_id), before, strict=True):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize(
    ("resolution_wh", "when", "error"),
    [
        ((0, 500), MONDAY_NOON, "resolution_wh must be positive"),
        ((1000, 500), dt.datetime(2025, 5, 5, 12), "aware datetime"),  # noqa: DTZ001
    ],
)
def test_bad_arguments(resolution_wh: tuple[int, int], when: dt.datetime, error: str) -> None:
    zone_file = ZoneFile.model_validate({"camera_id": "c", "zones": [monitored("a", LEFT)]})
    with pytest.raises(ValueError, match=error):
        ZoneMembership(zone_file, resolution_wh).evaluate(detections((0, 0, 1, 1, 0, 1)), when)
