"""A candidate's dwell survives a restart: stored per zone, found again by place, or dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

from edge.incidents.engine import IncidentEngine
from edge.incidents.persistence import StoredCandidate, StoredCandidateObject
from edge.incidents.store import CANDIDATE_TABLE, IncidentStore
from edge.incidents.types import IncidentEventKind, IncidentObject, StreamStart
from tests.edge.incidents.test_engine import TABLE, Obj, Zone, ZoneFile, ids, run, summary

START = datetime(2025, 6, 4, 2, 0, tzinfo=UTC)
ZONE = Zone(dwell_s=60.0, clear_s=30.0, update_every_s=None)  # heartbeats every 300 s
ZONES = ZoneFile(zones=(ZONE,))
CHAIR = (400.0, 300.0, 460.0, 380.0)
ELSEWHERE = (250.0, 200.0, 330.0, 260.0)  # in the zone, but not where the table stood


def engine_at(
    db: sqlite_utils.Database, wall_at_zero: datetime, zone_file: ZoneFile = ZONES
) -> IncidentEngine:
    return IncidentEngine(
        zone_file,
        "cam-1",
        store=IncidentStore(db),
        id_factory=lambda: "new-id",
        wall_time=StreamStart(wall_at_zero),
    )


def first_run(db: sqlite_utils.Database, objects=lambda t: [Obj(7)], until: float = 50) -> None:
    """Stream time 0 is wall START; the box dies after the frame at until - 1."""
    engine = engine_at(db, START)
    assert run(engine, lambda t: (objects(t), True), zone=ZONE, times=range(0, int(until))) == []


def stored(db: sqlite_utils.Database) -> list[StoredCandidate]:
    return IncidentStore(db).load_candidates("cam-1")


@pytest.mark.parametrize(
    ("name", "downtime_s", "after", "expected"),
    [
        (
            "restart at dwell 50 of 60: opens 10 s after the restart",
            0.0,
            [Obj(50, (101.0, 199.0, 181.0, 261.0))],  # a new tracker id, the same place
            [("opened", "new-id", 0, 10.0)],
        ),
        (
            "dwell is counted by wall clock: 20 s down, it opens on the first frame",
            20.0,
            [Obj(50)],
            [("opened", "new-id", 0, 0.0)],
        ),
        (
            "the object is gone after the restart: no incident",
            0.0,
            [],
            [],
        ),
        (
            "an object elsewhere in the zone is not the stored one: its dwell starts at the restart",
            0.0,
            [Obj(50, ELSEWHERE)],
            [("opened", "new-id", 0, 60.0)],
        ),
        (
            "last seen dwell_s + clear_s (90 s) before the restart: still continues",
            40.0,  # stored last seen at wall 0 (the row's only write), restart at wall 90
            [Obj(50)],
            [("opened", "new-id", 0, 0.0)],
        ),
        (
            "last seen more than dwell_s + clear_s before the restart: dropped, dwell starts again",
            41.0,
            [Obj(50)],
            [("opened", "new-id", 0, 60.0)],
        ),
    ],
)
def test_restart_continues_or_drops_a_candidate(
    name: str, downtime_s: float, after: list[Obj], expected: list[tuple]
) -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db)
    [row] = stored(db)
    assert [(o.first_seen_utc, o.last_seen_utc) for o in row.objects] == [(START, START)], name
    engine = engine_at(db, START + timedelta(seconds=50 + downtime_s))
    events = run(engine, lambda t: (after, True), zone=ZONE, times=range(0, 75))
    assert summary(events) == expected, name
    assert stored(db) == [], name  # opened, or forgotten after clear_s: no row either way
    if events and events[0].t < 60.0:  # the stored dwell went on
        opened = events[0]
        assert opened.first_seen_utc == START and opened.first_seen_t == 0.0, name
        assert opened.dwell_s == pytest.approx(50.0 + downtime_s + opened.t), name
        assert IncidentStore(db).load_open("cam-1")[0].first_seen_utc == START, name


def test_a_vanished_candidate_row_is_deleted_once_clear_s_passed() -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db)
    engine = engine_at(db, START + timedelta(seconds=50))
    run(engine, lambda t: ([], True), zone=ZONE, times=range(0, 31))
    assert len(stored(db)) == 1  # last seen at the resume (0) + clear_s: not forgotten yet
    run(engine, lambda t: ([], True), zone=ZONE, times=[31.0])
    assert stored(db) == []


def test_each_object_keeps_its_own_first_seen_in_one_row_per_zone() -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db, lambda t: [Obj(7)] + ([Obj(8, CHAIR, "chair")] if t >= 40 else []))
    [row] = stored(db)
    assert [(o.view.label, o.view.xyxy, o.first_seen_utc) for o in row.objects] == [
        ("dining table", TABLE, START),
        ("chair", CHAIR, START + timedelta(seconds=40)),
    ]
    # The table was taken in during the restart; the chair stays: it has dwelled 10 s, not 50.
    engine = engine_at(db, START + timedelta(seconds=50))
    events = run(engine, lambda t: ([Obj(60, CHAIR, "chair")], True), zone=ZONE, times=range(0, 60))
    assert summary(events) == [("opened", "new-id", 0, 50.0)]
    assert events[0].first_seen_utc == START + timedelta(seconds=40)


class CountingStore(IncidentStore):
    def __init__(self, db: sqlite_utils.Database) -> None:
        super().__init__(db)
        self.writes: list[tuple[str, tuple[str, ...]]] = []

    def save_candidate(self, candidate: StoredCandidate) -> None:
        self.writes.append(("save", tuple(o.view.label for o in candidate.objects)))
        super().save_candidate(candidate)

    def delete_candidate(self, camera_id: str, zone_id: str) -> None:
        self.writes.append(("delete", ()))
        super().delete_candidate(camera_id, zone_id)


def test_the_row_is_written_when_its_set_of_objects_changes_not_every_frame() -> None:
    zone = Zone(dwell_s=60.0, clear_s=10.0)
    store = CountingStore(sqlite_utils.Database(memory=True))
    engine = IncidentEngine(ZoneFile(zones=(zone,)), "cam-1", store=store, id_factory=ids())

    def timeline(t: float):
        table = Obj(100 + int(t) // 3)  # the tracker hands out a new id every 3 s: no change
        chair = [Obj(9, CHAIR, "chair")] if 20 <= t < 30 else []
        passer_by = [Obj(5, (0, 0, 10, 10), "bicycle", stationary=False)] if 5 <= t < 8 else []
        return [table, *chair, *passer_by], True

    events = run(engine, timeline, zone=zone, times=range(0, 80))
    assert [(e.event, e.t) for e in events] == [(IncidentEventKind.OPENED, 60.0)]
    assert store.writes == [
        ("save", ("dining table",)),  # t=0: the table's dwell starts
        ("save", ("dining table", "chair")),  # t=20: the chair joins
        ("save", ("dining table",)),  # t=40: the chair, last seen at 29, is forgotten
        ("delete", ()),  # t=60: the candidate opened an incident
    ]


def test_the_schedule_ending_deletes_the_row_and_a_removed_zone_drops_it_at_the_resume() -> None:
    db = sqlite_utils.Database(memory=True)
    engine = engine_at(db, START)
    run(engine, lambda t: ([Obj(7)], t < 20), zone=ZONE, times=range(0, 21))
    assert stored(db) == []
    first_run(db)
    engine = engine_at(db, START + timedelta(seconds=50), ZoneFile(zones=(Zone(id="door-2"),)))
    assert run(engine, lambda t: ([], True), zone=Zone(id="door-2"), times=[0.0]) == []
    assert stored(db) == []


def test_a_restored_candidate_not_seen_again_keeps_its_stored_last_seen() -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db)
    engine = engine_at(db, START + timedelta(seconds=50))
    # The table is hidden at first; a chair appears at once and the row is rewritten.
    run(engine, lambda t: ([Obj(8, CHAIR, "chair")], True), zone=ZONE, times=[0.0])
    [row] = stored(db)
    assert [(o.view.label, o.last_seen_utc) for o in row.objects] == [
        ("dining table", START),  # not the resume's wall time: it has not been seen since
        ("chair", START + timedelta(seconds=50)),
    ]


def test_first_seen_utc_is_carried_exactly_through_several_restarts() -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db, until=20)
    for restart_s in (20.0, 37.3, 51.7):  # odd offsets: a float round trip would drift
        engine = engine_at(db, START + timedelta(seconds=restart_s))
        events = run(engine, lambda t: ([Obj(50)], True), zone=ZONE, times=range(0, 10))
        if events:
            break
        [row] = stored(db)
        assert row.objects[0].first_seen_utc == START
    # The last restart at wall 51.7: opens at stream 9, the first frame at or past wall 60.
    assert summary(events) == [("opened", "new-id", 0, 9.0)]
    assert events[0].first_seen_utc == START


def test_candidate_writes_join_the_callers_transaction() -> None:
    db = sqlite_utils.Database(memory=True)
    engine = engine_at(db, START)
    with pytest.raises(RuntimeError), db.atomic():
        run(engine, lambda t: ([Obj(7)], True), zone=ZONE, times=[0.0])
        assert db[CANDIDATE_TABLE].count == 1
        raise RuntimeError("outbox insert failed")
    assert db[CANDIDATE_TABLE].count == 0  # rolled back together


@dataclass(frozen=True)
class Row:
    objects: tuple[StoredCandidateObject, ...] = field(
        default_factory=lambda: (
            StoredCandidateObject(
                IncidentObject("chair", 0.75, CHAIR, (0.625, 0.625, 0.71875, 0.7916), None),
                START + timedelta(microseconds=7),
                START + timedelta(seconds=3.5),
            ),
        )
    )


def test_candidate_round_trips_through_the_table_one_row_per_zone() -> None:
    store = IncidentStore(sqlite_utils.Database(memory=True))
    first = StoredCandidate("cam-1", "door-1", Row().objects, START)
    store.save_candidate(first)
    second = StoredCandidate("cam-1", "door-1", Row().objects * 2, START + timedelta(seconds=9))
    store.save_candidate(second)  # the same zone: replaces
    store.save_candidate(StoredCandidate("cam-2", "door-1", Row().objects, START))
    assert store.load_candidates("cam-1") == [second]
    store.delete_candidate("cam-1", "door-1")
    assert store.load_candidates("cam-1") == [] and len(store.load_candidates("cam-2")) == 1
    with pytest.raises(ValueError, match="at least one object"):
        store.save_candidate(StoredCandidate("cam-1", "door-1", (), START))


def test_a_candidate_row_beside_an_open_incident_of_its_zone_is_dropped_at_the_resume() -> None:
    db = sqlite_utils.Database(memory=True)
    engine = engine_at(db, START)
    assert [e.event for e in run(engine, lambda t: ([Obj(7)], True), zone=ZONE, times=range(0, 61))] == [
        IncidentEventKind.OPENED
    ]
    IncidentStore(db).save_candidate(StoredCandidate("cam-1", "door-1", Row().objects, START))  # a stray row
    engine = engine_at(db, START + timedelta(seconds=61))
    assert run(engine, lambda t: ([Obj(50)], True), zone=ZONE, times=[0.0]) == []  # the incident resumed
    assert stored(db) == [] and engine.open_incidents() == {"door-1": "new-id"}
