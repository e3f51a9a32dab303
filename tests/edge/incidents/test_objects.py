"""Duplicate boxes of one object: dropped from an incident's object list, never from its decisions."""

from __future__ import annotations

import pytest
import sqlite_utils

from edge.incidents.engine import EngineConfig, IncidentEngine
from edge.incidents.objects import cover, distinct_objects, places_differ
from edge.incidents.store import IncidentStore
from edge.incidents.types import IncidentObject
from tests.edge.incidents.test_engine import Obj, ZoneFile, ids, run, summary

PAIR = (100.0, 100.0, 300.0, 200.0)  # a pair of bicycles, one box
LEFT = (100.0, 100.0, 200.0, 200.0)  # each bicycle of the pair
RIGHT = (200.0, 100.0, 300.0, 200.0)
LEFT_TIGHT = (105.0, 105.0, 195.0, 195.0)  # the left bicycle again, a little smaller
ELSEWHERE = (400.0, 300.0, 500.0, 400.0)
HALF_IN = (150.0, 100.0, 250.0, 200.0)  # half of it over LEFT: two objects side by side
SHIFTED = (115.0, 100.0, 215.0, 200.0)  # LEFT moved by 15 %


def obj(box: tuple[float, float, float, float], confidence: float, label: str = "bicycle") -> IncidentObject:
    bbox = (box[0] / 1000, box[1] / 1000, box[2] / 1000, box[3] / 1000)
    return IncidentObject(label, confidence, box, bbox, None)


@pytest.mark.parametrize(
    ("name", "objects", "kept"),
    [
        ("nothing", [], []),
        ("one box", [obj(LEFT, 0.9)], [0]),
        ("pair box less confident than its bicycles: the pair box goes",
         [obj(PAIR, 0.5), obj(LEFT, 0.9), obj(RIGHT, 0.8)], [1, 2]),
        ("pair box more confident than its bicycles: the bicycles go",
         [obj(PAIR, 0.9), obj(LEFT, 0.6), obj(RIGHT, 0.7)], [0]),
        ("one bicycle twice, different sizes: the more confident stays",
         [obj(LEFT, 0.6), obj(LEFT_TIGHT, 0.7)], [1]),
        ("equal confidence: the earlier stays", [obj(LEFT, 0.7), obj(LEFT_TIGHT, 0.7)], [0]),
        ("another class at the same place is another object",
         [obj(LEFT, 0.9), obj(LEFT_TIGHT, 0.6, "chair")], [0, 1]),
        ("half covered is two objects", [obj(LEFT, 0.9), obj(HALF_IN, 0.5)], [0, 1]),
        ("apart", [obj(LEFT, 0.9), obj(ELSEWHERE, 0.5)], [0, 1]),
        ("a dropped box drops nothing: the pair box goes, both bicycles stay",
         [obj(RIGHT, 0.6), obj(PAIR, 0.8), obj(LEFT, 0.9)], [0, 2]),
        ("order kept", [obj(ELSEWHERE, 0.3), obj(LEFT_TIGHT, 0.4), obj(LEFT, 0.9)], [0, 2]),
    ],
)  # fmt: skip
def test_distinct_objects(name: str, objects: list[IncidentObject], kept: list[int]) -> None:
    before = list(objects)
    assert distinct_objects(objects) == tuple(objects[i] for i in kept), name
    assert objects == before  # the input is not changed


@pytest.mark.parametrize(
    ("min_cover", "kept"),
    [
        (None, [0, 1]),  # keep everything
        (1.0, [0, 1]),
        (0.9, [0, 1]),
        (0.85, [0]),
        (0.8, [0]),
        (0.5, [0]),
    ],
)
def test_distinct_objects_threshold_is_configurable(min_cover: float | None, kept: list[int]) -> None:
    objects = [obj(LEFT, 0.9), obj(SHIFTED, 0.5)]  # 85 % of either covers the other
    assert distinct_objects(objects, min_cover) == tuple(objects[i] for i in kept)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (LEFT, PAIR, 1.0),  # wholly inside the bigger box
        (PAIR, LEFT, 1.0),  # symmetric: over the smaller box
        (LEFT, HALF_IN, 0.5),
        (LEFT, SHIFTED, 0.85),
        (LEFT, ELSEWHERE, 0.0),
        (LEFT, (150.0, 150.0, 150.0, 150.0), 0.0),  # no area: covers nothing
    ],
)
def test_cover(a: tuple, b: tuple, expected: float) -> None:
    assert cover([a], [b])[0, 0] == pytest.approx(expected)
    assert cover([], [b]).shape == (0, 1)


@pytest.mark.parametrize(
    ("current", "emitted", "differ"),
    [
        ((), (), False),
        ((LEFT,), (), True),
        ((), (LEFT,), True),
        ((LEFT, RIGHT, PAIR), (PAIR,), False),  # the pair seen as three boxes: same places
        ((LEFT_TIGHT,), (LEFT,), False),
        ((LEFT, ELSEWHERE), (LEFT,), True),  # a new object elsewhere
        ((LEFT,), (LEFT, ELSEWHERE), True),  # one left
    ],
)
def test_places_differ(current: tuple, emitted: tuple, differ: bool) -> None:
    assert places_differ(current, emitted) is differ


@pytest.mark.parametrize("value", [0.0, -0.1, 1.01])
def test_engine_config_rejects_a_cover_outside_0_to_1(value: float) -> None:
    with pytest.raises(ValueError, match="duplicate_cover"):
        EngineConfig(duplicate_cover=value)


def bicycles(t: float) -> tuple[list[Obj], bool]:
    """A pair of bicycles seen as the pair box plus each bicycle; the right one is taken in at 40."""
    objects = [Obj(1, PAIR, "bicycle", 0.5), Obj(2, LEFT, "bicycle", 0.9)]
    if t < 40:
        objects.append(Obj(3, RIGHT, "bicycle", 0.8))
    return (objects if t < 70 else []), True


def test_the_engine_lists_each_bicycle_once_and_decides_as_before() -> None:
    db = sqlite_utils.Database(memory=True)
    engine = IncidentEngine(ZoneFile(), "cam-1", store=IncidentStore(db), id_factory=ids())
    events = run(engine, bicycles, times=range(0, 20))
    # The store keeps every member: a resume and a cooldown find each box again by place.
    [stored] = IncidentStore(db).load_open("cam-1")
    assert [o.xyxy for o in stored.objects] == [PAIR, LEFT, RIGHT]
    events += run(engine, bicycles, times=range(20, 90))
    every_box = IncidentEngine(
        ZoneFile(), "cam-1", id_factory=ids(), config=EngineConfig(duplicate_cover=None)
    )
    reference = run(every_box, bicycles, times=range(0, 90))
    assert summary(events) == summary(reference)  # the same opens, updates and clears
    assert [e.event.value for e in events] == ["opened", "updated", "updated", "cleared"]
    assert [[o.xyxy for o in e.objects] for e in reference] == [[PAIR, LEFT, RIGHT]] * 2 + [[PAIR, LEFT]] * 2
    assert [[o.xyxy for o in e.objects] for e in events] == [[LEFT, RIGHT]] * 2 + [[LEFT]] * 2
    assert [e.primary for e in events] == [e.primary for e in reference]
