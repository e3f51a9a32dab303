from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from edge.incidents.engine import IncidentEngine
from edge.incidents.store import OPEN_TABLE, IncidentStore
from edge.incidents.types import ClearReason, IncidentEventKind, StreamStart
from tests.edge.incidents.test_engine import TABLE, Obj, Zone, ZoneFile, ids, run, summary

START = datetime(2025, 6, 4, 2, 0, tzinfo=UTC)


def first_run(db: sqlite_utils.Database, until: float = 21, present_until: float = 1e9) -> None:
    engine = IncidentEngine(
        ZoneFile(), "cam-1", store=IncidentStore(db), id_factory=ids(), wall_time=StreamStart(START)
    )
    events = run(engine, lambda t: ([Obj(7)] if t < present_until else [], True), times=range(0, int(until)))
    assert events[0].event is IncidentEventKind.OPENED and events[0].incident_id == "inc-0"


def second_engine(
    db: sqlite_utils.Database, downtime_s: float, zone_file: ZoneFile | None = None
) -> IncidentEngine:
    # The process restarts: stream time starts again at 0, the wall clock moved on.
    restart = START + timedelta(seconds=20 + downtime_s)
    return IncidentEngine(
        zone_file or ZoneFile(),
        "cam-1",
        store=IncidentStore(db),
        id_factory=lambda: "new-id",
        wall_time=StreamStart(restart),
    )


@pytest.mark.parametrize(
    ("name", "zone_file", "objects", "expected"),
    [
        (
            "object still there: resumes, seq continues, heartbeat keeps its cadence",
            ZoneFile(),
            [Obj(50, (101.0, 199.0, 181.0, 261.0))],  # new tracker id after restart, same place
            [("updated", "inc-0", 1, 20.0)],  # last event at old t=10 (wall), every 30 s -> new t=20
        ),
        (
            "object gone after restart: cleared after clear_s from the resume",
            ZoneFile(),
            [],
            [("cleared", "inc-0", 1, 5.0)],
        ),
        (
            "zone removed from the zone file: cleared at once",
            ZoneFile(zones=(Zone(id="door-2"),)),
            [],
            [("cleared", "inc-0", 1, 0.0)],
        ),
    ],
)
def test_restart_resumes_open_incidents(
    tmp_path: Path, name: str, zone_file: ZoneFile, objects: list[Obj], expected: list[tuple]
) -> None:
    db_path = tmp_path / "edge.db"
    first_run(sqlite_utils.Database(db_path))
    engine = second_engine(sqlite_utils.Database(db_path), downtime_s=0.0, zone_file=zone_file)
    zone = zone_file.zones[0]
    events = run(engine, lambda t: (objects, True), zone=zone, times=range(0, 25))
    assert summary(events) == expected, name
    if events[0].event is IncidentEventKind.CLEARED:
        assert IncidentStore(sqlite_utils.Database(db_path)).load_open("cam-1") == []
    if events[0].event is IncidentEventKind.UPDATED:
        # First seen at old t=0, 20 s before the restart, i.e. before this stream began:
        # first_seen_t is the stream's start, the age is carried by wall clock.
        assert events[0].first_seen_t == 0.0
        assert events[0].dwell_s == pytest.approx(40.0)
        assert events[0].first_seen_utc == START
        assert events[0].utc == START + timedelta(seconds=40)


def test_zone_removed_reason() -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db)
    engine = second_engine(db, 0.0, ZoneFile(zones=(Zone(id="door-2"),)))
    events = run(engine, lambda t: ([], True), zone=Zone(id="door-2"), times=[0.0])
    assert events[0].reason is ClearReason.ZONE_REMOVED


def test_open_incident_round_trips_through_the_table() -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db)
    [stored] = IncidentStore(db).load_open("cam-1")
    assert (stored.incident_id, stored.zone_id, stored.seq) == ("inc-0", "door-1", 0)
    assert stored.first_seen_utc == START and stored.last_event_utc == START + timedelta(seconds=10)
    assert stored.objects[0].label == "dining table" and stored.objects[0].xyxy == TABLE
    assert IncidentStore(db).load_open("other-cam") == []


def test_cooldown_survives_a_restart(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "edge.db")
    first_run(db, until=30, present_until=15)  # cleared at 19 (last seen 14 + 5): cooldown until 39
    engine = second_engine(db, downtime_s=0.0)  # restart at wall 20 s -> stream 0
    events = run(engine, lambda t: ([Obj(60)], True), times=range(0, 40))
    # Back at the same place at once: dwell would open at 10, the cooldown holds it until wall 39 = t 19.
    assert summary(events) == [("opened", "new-id", 0, 19.0)]


def test_store_writes_join_the_callers_transaction() -> None:
    """edge/node writes engine state and the outbox event in one transaction."""
    db = sqlite_utils.Database(memory=True)
    store = IncidentStore(db)
    engine = IncidentEngine(ZoneFile(), "cam-1", store=store, id_factory=ids(), wall_time=StreamStart(START))
    run(engine, lambda t: ([Obj(7)], True), times=range(0, 10))
    with pytest.raises(RuntimeError), db.atomic():
        events = run(engine, lambda t: ([Obj(7)], True), times=[10.0])
        assert events[0].event is IncidentEventKind.OPENED
        assert db[OPEN_TABLE].count == 1
        raise RuntimeError("outbox insert failed")
    assert db[OPEN_TABLE].count == 0  # rolled back together


@pytest.mark.parametrize(
    ("name", "resume_t", "expected_first_seen_t"),
    [
        ("a file restarts at 0: first seen before the stream began", 0.0, 0.0),
        ("a file resumed later in the stream", 5.0, 0.0),
        ("monotonic time went on (or the engine was rebuilt mid-stream)", 1000.0, 980.0),
    ],
)
def test_resumed_first_seen_t_never_lies_before_the_stream_start(
    name: str, resume_t: float, expected_first_seen_t: float
) -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db)  # first seen at wall START, last event at START + 10 s
    restart = START + timedelta(seconds=20)  # the wall time of the resume frame
    engine = IncidentEngine(
        ZoneFile(),
        "cam-1",
        store=IncidentStore(db),
        wall_time=StreamStart(restart - timedelta(seconds=resume_t)),
    )
    times = [resume_t + k for k in range(25)]
    events = run(engine, lambda t: ([Obj(50)], True), times=times)
    assert [e.event for e in events] == [IncidentEventKind.UPDATED], name
    [updated] = events
    assert updated.first_seen_t == pytest.approx(expected_first_seen_t), name
    assert updated.first_seen_t >= 0.0
    assert updated.dwell_s == pytest.approx(updated.t - resume_t + 20.0), name  # 20 s before the resume
    assert updated.first_seen_utc == START, name
    [stored] = IncidentStore(db).load_open("cam-1")
    assert stored.first_seen_t == pytest.approx(expected_first_seen_t) and stored.first_seen_utc == START


def test_first_seen_utc_is_carried_through_several_restarts() -> None:
    db = sqlite_utils.Database(memory=True)
    first_run(db)
    for restart_s in (20.0, 47.3, 91.7):  # odd offsets: a float round trip would drift
        engine = IncidentEngine(
            ZoneFile(),
            "cam-1",
            store=IncidentStore(db),
            wall_time=StreamStart(START + timedelta(seconds=restart_s)),
        )
        events = run(engine, lambda t: ([Obj(50)], True), times=range(0, 35))
        assert events and all(e.first_seen_utc == START and e.first_seen_t == 0.0 for e in events)
        [stored] = IncidentStore(db).load_open("cam-1")
        assert stored.first_seen_utc == START
