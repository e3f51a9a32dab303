"""The edge outbox: order, atomicity with the caller's transaction, quota, retention."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.uplink.helpers import T0, incident, lifecycle
from uplink.outbox import Outbox, OutboxFull
from uplink.sqlite import open_database
from uplink.topics import Topics

TOPIC = Topics().incident("node-a", "cam-01")


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "edge.db")


def test_pending_is_in_enqueue_order_and_carries_the_idempotency_key(outbox: Outbox) -> None:
    messages = lifecycle(uuid.uuid4(), updates=3)
    positions = [outbox.enqueue(message, TOPIC) for message in messages]
    assert positions == sorted(positions)
    rows = outbox.pending(limit=100)
    assert [row.seq for row in rows] == [0, 1, 2, 3, 4]
    assert {row.incident_id for row in rows} == {str(messages[0].incident_id)}
    assert [row.position for row in outbox.pending(limit=2, after=positions[1])] == positions[2:4]
    assert rows[0].qos == 1 and rows[0].topic == TOPIC


def test_mark_sent_removes_from_pending_and_is_idempotent(outbox: Outbox) -> None:
    positions = [outbox.enqueue(m, TOPIC) for m in lifecycle(uuid.uuid4())]
    assert outbox.mark_sent([positions[0], positions[2]]) == 2
    assert outbox.mark_sent([positions[0]]) == 0
    assert [row.position for row in outbox.pending()] == [positions[1]]
    assert outbox.backlog() == 1


def test_event_commits_with_the_callers_state(outbox: Outbox) -> None:
    outbox.db.execute("CREATE TABLE incident_state (incident_id TEXT PRIMARY KEY, seq INTEGER)")
    message = incident(uuid.uuid4(), 0)
    with outbox.transaction() as db:
        db.execute("INSERT INTO incident_state VALUES (?, ?)", [str(message.incident_id), 0])
        outbox.enqueue(message, TOPIC)
    assert outbox.backlog() == 1
    assert outbox.db.execute("SELECT count(*) FROM incident_state").fetchone()[0] == 1


def test_rollback_loses_both_the_state_and_the_event(outbox: Outbox) -> None:
    outbox.db.execute("CREATE TABLE incident_state (incident_id TEXT PRIMARY KEY, seq INTEGER)")
    message = incident(uuid.uuid4(), 0)
    with pytest.raises(RuntimeError, match="edge failed"), outbox.transaction() as db:
        db.execute("INSERT INTO incident_state VALUES (?, ?)", [str(message.incident_id), 0])
        outbox.enqueue(message, TOPIC)
        raise RuntimeError("edge failed after enqueue")
    assert outbox.backlog() == 0
    assert outbox.db.execute("SELECT count(*) FROM incident_state").fetchone()[0] == 0


def test_sqlite_utils_atomic_block_works_too(outbox: Outbox) -> None:
    with pytest.raises(ValueError), outbox.db.atomic():
        outbox.enqueue(incident(uuid.uuid4(), 0), TOPIC)
        raise ValueError
    assert outbox.backlog() == 0


def test_quota_refuses_loudly_and_never_deletes_unsent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path / "edge.db", max_bytes=256 * 1024)
    big = incident(uuid.uuid4(), 0, label="x" * 64, objects=[])
    accepted = 0
    with caplog.at_level(logging.ERROR, logger="uplink.outbox"), pytest.raises(OutboxFull):
        for _ in range(10_000):
            outbox.enqueue(big.model_dump_json(by_alias=True).encode() * 20, TOPIC)
            accepted += 1
    assert accepted > 0
    assert outbox.backlog() == accepted, "an unsent event was deleted to make room"
    assert "outbox full" in caplog.text
    assert outbox.used_bytes() <= outbox.max_bytes


def test_full_outbox_inside_caller_transaction_rolls_back_the_state(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "edge.db", max_bytes=1)  # nothing fits
    outbox.db.execute("CREATE TABLE incident_state (incident_id TEXT PRIMARY KEY)")
    with pytest.raises(OutboxFull), outbox.transaction() as db:
        db.execute("INSERT INTO incident_state VALUES ('x')")
        outbox.enqueue(incident(uuid.uuid4(), 0), TOPIC)
    assert outbox.db.execute("SELECT count(*) FROM incident_state").fetchone()[0] == 0


def test_sent_rows_make_room_before_the_quota_refuses(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "edge.db", max_bytes=512 * 1024)
    payload = b"x" * 4000
    positions = []
    with pytest.raises(OutboxFull):
        while True:
            positions.append(outbox.enqueue(payload, TOPIC))
    outbox.mark_sent(positions)
    for _ in range(len(positions) // 2):  # fits again: sent rows went early, retention or not
        outbox.enqueue(payload, TOPIC)
    assert outbox.backlog() == len(positions) // 2


def test_prune_keeps_unacknowledged_and_recent_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = Outbox(tmp_path / "edge.db", retention=timedelta(hours=1), clock=clock)
    ids = [uuid.uuid4() for _ in range(4)]
    old, recent, sent_only, unsent = (outbox.enqueue(incident(i, 0), TOPIC) for i in ids)
    outbox.mark_sent([old, sent_only])
    outbox.mark_acked([(str(ids[0]), 0)])
    clock.now += timedelta(minutes=50)
    outbox.mark_sent([recent], acknowledged=True)  # a node that waits for PUBACK only
    clock.now += timedelta(minutes=20)
    assert outbox.prune() == 1
    remaining = [row[0] for row in outbox.db.execute("SELECT position FROM outbox ORDER BY position")]
    assert remaining == [recent, sent_only, unsent]  # PUBACKed is not stored: sent_only stays
    assert outbox.unacked()[0] == 2


def test_unacknowledged_rows_are_sent_again_after_the_timeout(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = Outbox(tmp_path / "edge.db", clock=clock)
    ids = [uuid.uuid4() for _ in range(3)]
    positions = [outbox.enqueue(incident(i, 0), TOPIC) for i in ids]
    other = outbox.enqueue(b"{}", "curbwatch/v1/n/x")  # not an incident: its PUBACK is enough
    outbox.mark_sent([*positions, other])
    assert outbox.backlog() == 0 and outbox.unacked()[0] == 3
    assert outbox.mark_acked([(str(ids[0]), 0), (str(ids[0]), 0), (str(uuid.uuid4()), 5)]) == 1
    clock.now += timedelta(seconds=30)
    assert outbox.resend_unacked(timedelta(seconds=60)) == 0
    clock.now += timedelta(seconds=40)
    assert outbox.resend_unacked(timedelta(seconds=60)) == 2
    assert [row.position for row in outbox.pending()] == positions[1:]
    # An acknowledgement that overtakes the re-send still settles the row.
    assert outbox.mark_acked([(str(ids[1]), 0)]) == 1
    assert [row.position for row in outbox.pending()] == positions[2:]


def test_positions_are_never_reused_after_pruning(outbox: Outbox) -> None:
    first = outbox.enqueue(b"{}", TOPIC)
    outbox.mark_sent([first])
    outbox.db.execute("DELETE FROM outbox")  # as prune() would
    assert outbox.enqueue(b"{}", TOPIC) > first


def test_two_connections_write_concurrently_without_busy_errors(tmp_path: Path) -> None:
    """The edge (reads its state, then enqueues) and the publisher (marks sent) share the file."""
    path = tmp_path / "edge.db"
    edge = Outbox(path)
    edge.db.execute("CREATE TABLE incident_state (incident_id TEXT PRIMARY KEY, seq INTEGER)")
    errors: list[BaseException] = []
    done = threading.Event()

    def publisher() -> None:
        try:
            marker = Outbox(open_database(path))
            while not done.is_set():
                marker.mark_sent([row.position for row in marker.pending(limit=50)])
            marker.close()
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        for n in range(300):
            with edge.transaction() as db:
                db.execute("SELECT count(*) FROM incident_state").fetchone()  # read first, then write
                db.execute("INSERT INTO incident_state VALUES (?, ?)", [str(n), 0])
                edge.enqueue(b"{}", TOPIC)
    finally:
        done.set()
        thread.join(30)
    assert not errors, errors
    assert edge.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 300
