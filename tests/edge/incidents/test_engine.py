from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest

from edge.incidents.engine import IncidentEngine
from edge.incidents.types import ClearReason, IncidentEvent, IncidentEventKind, StreamStart
from edge.track import TrackedFrame
from models.classes import COCO_CLASSES
from models.types import Detections, Frame

OPENED, UPDATED, CLEARED = IncidentEventKind.OPENED, IncidentEventKind.UPDATED, IncidentEventKind.CLEARED
TABLE = (100.0, 200.0, 180.0, 260.0)


@dataclass(frozen=True)
class Shop:
    id: str = "shop-1"
    name: str = "Noodles 面馆"


@dataclass(frozen=True)
class Zone:
    id: str = "door-1"
    shop: Shop | None = field(default_factory=Shop)
    dwell_s: float = 10.0
    clear_s: float = 5.0
    update_every_s: float | None = 30.0
    cooldown_s: float | None = 20.0


@dataclass(frozen=True)
class ZoneFile:
    zones: tuple[Zone, ...] = (Zone(),)
    camera_id: str = "cam-1"


@dataclass(frozen=True, eq=False)
class Check:
    zone: Zone
    active: bool
    mask: np.ndarray
    overlap: np.ndarray


@dataclass(frozen=True)
class Obj:
    tracker_id: int
    box: tuple[float, float, float, float] = TABLE
    label: str = "dining table"
    confidence: float = 0.8
    stationary: bool = True
    in_zone: bool = True


def step_inputs(t: float, objects: Iterable[Obj], zone: Zone = Zone(), active: bool = True):
    objects = list(objects)
    pixels = np.zeros((480, 640, 3), np.uint8)
    if objects:
        det = Detections(
            np.array([o.box for o in objects], np.float32),
            np.array([o.confidence for o in objects], np.float32),
            np.array([COCO_CLASSES.index(o.label) for o in objects], np.int64),
            COCO_CLASSES,
            np.array([o.tracker_id for o in objects], np.int64),
        )
    else:
        det = Detections.empty(COCO_CLASSES).with_tracker_id(np.zeros(0, np.int64))
    tracked = TrackedFrame(
        det, np.array([o.stationary for o in objects], bool), np.full(len(objects), 0.0), t
    )
    mask = np.array([o.in_zone and active for o in objects], bool)
    checks = {zone.id: Check(zone, active, mask, mask.astype(np.float32))}
    return Frame(pixels, "cam-1", t), tracked, checks


def ids():
    counter = itertools.count()
    return lambda: f"inc-{next(counter)}"


def run(
    engine: IncidentEngine, timeline, zone: Zone = Zone(), times: Iterable[float] = ()
) -> list[IncidentEvent]:
    """timeline(t) -> (objects, active)."""
    events = []
    for t in times:
        objects, active = timeline(t)
        events.extend(engine.step(*step_inputs(t, objects, zone, active)))
    return events


def summary(events: list[IncidentEvent]) -> list[tuple[str, str, int, float]]:
    return [(e.event.value, e.incident_id, e.seq, e.t) for e in events]


def test_table_left_out_opens_once_updates_slowly_and_clears_after_hysteresis() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())

    def timeline(t: float):
        present = 3 <= t < 80 and not (40 <= t < 44)  # a pedestrian hides it for 4 s < clear_s
        return ([Obj(7)] if present else []) + [Obj(99, (300, 100, 340, 220), "person", 0.9, False)], True

    events = run(engine, timeline, times=range(0, 100))
    assert summary(events) == [
        ("opened", "inc-0", 0, 13.0),
        ("updated", "inc-0", 1, 43.0),
        ("updated", "inc-0", 2, 73.0),
        ("cleared", "inc-0", 3, 84.0),
    ]
    opened = events[0]
    assert opened.first_seen_t == 3.0
    assert opened.shop_id == "shop-1" and opened.shop_name == "Noodles 面馆"
    assert opened.objects[0].label == "dining table" and opened.objects[0].tracker_id == 7
    assert opened.objects[0].bbox == pytest.approx((100 / 640, 200 / 480, 180 / 640, 260 / 480))
    assert opened.evidence_frame is not None
    assert events[-1].reason is ClearReason.ABSENT and events[-1].evidence_frame is None
    assert opened.utc == datetime(1970, 1, 1, 0, 0, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("objects", "why"),
    [
        ([Obj(1, label="person")], "people never count"),
        ([Obj(1, stationary=False)], "a moving object never opens one"),
        ([Obj(1, in_zone=False)], "outside the zone"),
    ],
)
def test_nothing_opens(objects: list[Obj], why: str) -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())
    assert run(engine, lambda t: (objects, True), times=range(0, 60)) == [], why


def test_dwell_is_in_seconds_of_frame_time_not_frames() -> None:
    for fps in (0.5, 1.0, 4.0):
        engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())
        times = [k / fps for k in range(int(20 * fps))]
        events = run(engine, lambda t: ([Obj(1)], True), times=times)
        assert events[0].t == 10.0


def test_track_id_churn_at_one_place_does_not_spam_updates() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())

    def timeline(t: float):
        tid = 100 + int(t) // 3  # the tracker hands out a new id every 3 s
        jitter = (t % 2) * 2.0
        return [Obj(tid, (100 + jitter, 200, 180 + jitter, 260))], True

    events = run(engine, timeline, times=range(0, 75))
    # 25 ids in 75 s, yet only the 30 s heartbeats follow the opening; one incident throughout.
    assert [(e.event, e.t) for e in events] == [(OPENED, 10.0), (UPDATED, 40.0), (UPDATED, 70.0)]
    assert {e.incident_id for e in events} == {"inc-0"}
    assert events[-1].objects[0].tracker_id == 123  # the object carries its newest id


def test_a_second_object_is_an_update_not_a_second_incident() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())

    def timeline(t: float):
        objects = [Obj(1)]
        if t >= 15:
            objects.append(Obj(2, (400, 300, 460, 380), "chair"))
        return objects, True

    events = run(engine, timeline, times=range(0, 30))
    assert [(e.event, e.t, len(e.objects)) for e in events] == [(OPENED, 10.0, 1), (UPDATED, 25.0, 2)]


def test_cleared_object_does_not_reopen_within_cooldown() -> None:
    engine = IncidentEngine(ZoneFile(zones=(Zone(cooldown_s=40.0),)), "cam-1", id_factory=ids())

    def timeline(t: float):
        present = t < 20 or t >= 30  # taken in at 20, put back out at 30 by the same place
        return ([Obj(1 if t < 20 else 2)] if present else []), True

    events = run(engine, timeline, zone=Zone(cooldown_s=40.0), times=range(0, 90))
    assert summary(events) == [
        ("opened", "inc-0", 0, 10.0),
        ("cleared", "inc-0", 1, 24.0),  # last seen at 19, + clear_s
        ("opened", "inc-1", 0, 64.0),  # cooldown ends at 24 + 40
    ]


def test_schedule_end_clears_and_nothing_opens_off_duty() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())
    events = run(engine, lambda t: ([Obj(1)], t < 30 or t >= 60), times=range(0, 75))
    assert [(e.event, e.t, e.reason) for e in events] == [
        (OPENED, 10.0, None),
        (CLEARED, 30.0, ClearReason.SCHEDULE),
        (OPENED, 70.0, None),  # dwell restarts when the rule applies again
    ]


def test_step_never_mutates_its_inputs() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())
    for t in range(0, 15):
        frame, tracked, checks = step_inputs(float(t), [Obj(1), Obj(2, label="person")])
        before = (
            frame.pixels.copy(),
            tracked.detections.xyxy.copy(),
            tracked.stationary.copy(),
            checks["door-1"].mask.copy(),
        )
        engine.step(frame, tracked, checks)
        np.testing.assert_array_equal(frame.pixels, before[0])
        np.testing.assert_array_equal(tracked.detections.xyxy, before[1])
        np.testing.assert_array_equal(tracked.stationary, before[2])
        np.testing.assert_array_equal(checks["door-1"].mask, before[3])


def test_events_are_frozen_and_wall_time_is_injected() -> None:
    start = datetime(2025, 6, 4, 2, 0, tzinfo=UTC)
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids(), wall_time=StreamStart(start))
    events = run(engine, lambda t: ([Obj(1)], True), times=range(0, 11))
    assert events[0].utc == datetime(2025, 6, 4, 2, 0, 10, tzinfo=UTC)
    with pytest.raises(AttributeError):
        events[0].seq = 5  # type: ignore[misc]


def test_mask_of_the_wrong_length_is_an_error() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1")
    frame, tracked, _ = step_inputs(0.0, [Obj(1)])
    bad = {"door-1": Check(Zone(), True, np.zeros(3, bool), np.zeros(3, np.float32))}
    with pytest.raises(ValueError, match="expected"):
        engine.step(frame, tracked, bad)


def test_evidence_is_due_while_an_object_waits_out_its_dwell_and_before_each_update() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())
    walker = Obj(99, (300, 100, 340, 220), "person", 0.9, False)

    def timeline(t: float):
        return ([Obj(7)] if 3 <= t < 50 else []) + [walker], True

    due, kinds = {}, {}
    for t in range(0, 60):
        objects, active = timeline(t)
        for event in engine.step(*step_inputs(t, objects, Zone(), active)):
            kinds[t] = event.event.value
        due[t] = engine.evidence_due(t, within_s=5.0)
    assert kinds == {13: "opened", 43: "updated", 54: "cleared"}
    assert [t for t, is_due in due.items() if is_due] == [*range(3, 13), *range(38, 43)]


def test_evidence_is_due_when_the_objects_moved_and_not_for_one_cooling_down() -> None:
    engine = IncidentEngine(ZoneFile(), "cam-1", id_factory=ids())
    moved = (400.0, 300.0, 480.0, 360.0)
    run(engine, lambda t: ([Obj(7)], True), times=range(0, 14))  # opened at 13
    assert not engine.evidence_due(13, within_s=5.0)
    engine.step(*step_inputs(14, [Obj(7, moved)]))
    assert engine.evidence_due(14, within_s=5.0)  # an update with the new place will come
    run(engine, lambda t: ([], True), times=range(15, 30))  # gone: cleared, cooling down 20 s
    assert engine.open_incidents() == {}
    engine.step(*step_inputs(30, [Obj(7, moved)]))  # back within the cooldown: no new incident near
    assert not engine.evidence_due(30, within_s=5.0)
