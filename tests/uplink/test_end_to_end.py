"""Outbox -> Mosquitto -> ingest with real failures: broker outage, publisher SIGKILL, Last Will,
ingest downtime. Every event must arrive, per incident in order, and be stored once."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from tests.support.broker import MosquittoBroker
from tests.uplink.helpers import Collector, lifecycle, settings_for, wait_until
from uplink.ingest_service import IngestService
from uplink.messages import IncidentMessage
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
T = Topics()


def stored_events(db_path: Path) -> list[tuple[str, int]]:
    """(incident_id, seq) in the order the ingest stored them."""
    with sqlite_utils.Database(db_path) as db:
        return [
            (r[0], r[1]) for r in db.execute("SELECT incident_id, seq FROM incident_events ORDER BY rowid")
        ]


def assert_complete_and_ordered(db_path: Path, expected: list[IncidentMessage]) -> None:
    stored = stored_events(db_path)
    assert sorted(stored) == sorted((str(m.incident_id), m.seq) for m in expected), (
        "lost or unexpected events"
    )
    by_incident: dict[str, list[int]] = {}
    for incident_id, seq in stored:
        by_incident.setdefault(incident_id, []).append(seq)
    for incident_id, seqs in by_incident.items():
        assert seqs == sorted(seqs), f"incident {incident_id} stored out of order: {seqs}"
    with sqlite_utils.Database(db_path) as db:
        states = {r[0] for r in db.execute("SELECT state FROM incidents")}
        assert states == {"cleared"}
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0


@pytest.fixture
def ingest(durable_broker: MosquittoBroker, tmp_path: Path) -> Iterator[IngestService]:
    service = IngestService(
        settings_for(durable_broker, "review-ingest"), tmp_path / "review.db", tmp_path / "evidence"
    )
    service.start()
    assert service.wait_subscribed(10), "ingest did not subscribe"
    yield service
    service.stop()


def enqueue_all(outbox: Outbox, messages: list[IncidentMessage]) -> None:
    for message in messages:
        outbox.enqueue(message, T.incident(message.node_id, message.camera_id))


def test_broker_outage_loses_nothing(
    durable_broker: MosquittoBroker, ingest: IngestService, tmp_path: Path
) -> None:
    node_id = "node-outage"
    outbox = Outbox(tmp_path / "edge.db")
    publisher = Publisher(settings_for(durable_broker, node_id, reconnect_max_s=1), tmp_path / "edge.db")
    publisher.start()
    assert publisher.wait_connected(10)
    before = [m for _ in range(250) for m in lifecycle(uuid.uuid4(), updates=2, node_id=node_id)]
    during = [m for _ in range(20) for m in lifecycle(uuid.uuid4(), updates=3, node_id=node_id)]
    try:
        with outbox.transaction():  # one commit, so the drain is under way when the broker goes
            enqueue_all(outbox, before)
        publisher.notify()
        wait_until(lambda: publisher.stats().published >= 20, 10, "the drain to start", interval_s=0.001)
        durable_broker.stop()
        unsent_at_outage = outbox.backlog()
        assert unsent_at_outage > 0, "the drain finished before the outage: the test proves nothing"
        enqueue_all(outbox, during)
        assert outbox.backlog() > 0
        durable_broker.start()
        wait_until(lambda: outbox.backlog() == 0, 30, "the outbox to drain after the outage")
        wait_until(
            lambda: len(stored_events(ingest.database.path)) >= len(before + during), 30, "all events stored"
        )
        assert_complete_and_ordered(ingest.database.path, before + during)
    finally:
        publisher.stop(flush_timeout_s=2)
        outbox.close()


def start_publisher_process(
    broker: MosquittoBroker, node_id: str, outbox_path: Path, window: int = 20
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.uplink.publisher_process",
            str(broker.port),
            node_id,
            str(outbox_path),
            str(window),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # bounded: the script exits if it cannot connect within 10 s
    if line.strip() != "connected":
        process.kill()
        raise AssertionError(f"publisher process did not connect (said {line!r}, rc {process.wait()})")
    return process


def test_sigkill_mid_drain_loses_nothing(
    durable_broker: MosquittoBroker, ingest: IngestService, tmp_path: Path
) -> None:
    node_id = "node-crash"
    outbox = Outbox(tmp_path / "edge.db")
    messages = [m for _ in range(150) for m in lifecycle(uuid.uuid4(), updates=2, node_id=node_id)]
    enqueue_all(outbox, messages)
    process = start_publisher_process(durable_broker, node_id, tmp_path / "edge.db", window=5)
    try:
        # Under way on both sides: the centre has events and the publisher has marked some sent
        # (it marks PUBACKed rows in batches, so the first marks can lag the deliveries).
        wait_until(
            lambda: len(stored_events(ingest.database.path)) >= 100 and outbox.backlog() < len(messages),
            30,
            "the drain to be under way",
        )
        process.kill()
        process.wait(10)
        left = outbox.backlog()
        assert 0 < left < len(messages), f"not killed mid-drain (backlog {left})"
        process = start_publisher_process(durable_broker, node_id, tmp_path / "edge.db")
        wait_until(lambda: outbox.backlog() == 0, 30, "the restarted publisher to drain the rest")
        wait_until(lambda: len(stored_events(ingest.database.path)) >= len(messages), 30, "all events stored")
        assert_complete_and_ordered(ingest.database.path, messages)
    finally:
        process.kill()
        process.wait(10)
        outbox.close()


def test_last_will_marks_a_killed_node_offline(durable_broker: MosquittoBroker, tmp_path: Path) -> None:
    node_id = "node-will"
    Outbox(tmp_path / "edge.db").close()
    collector = Collector(durable_broker, T.node_status(node_id))
    process = start_publisher_process(durable_broker, node_id, tmp_path / "edge.db")
    try:
        assert collector.next().payload == b"online"
        process.kill()  # no DISCONNECT packet: the broker must publish the will
        assert collector.next().payload == b"offline"
    finally:
        process.kill()
        process.wait(10)
        collector.close()
    late = Collector(durable_broker, T.node_status(node_id), client_id="late-joiner")
    message = late.next()
    assert (message.payload, message.retain) == (b"offline", True)
    late.close()


def test_events_published_while_the_ingest_is_down_are_delivered(
    durable_broker: MosquittoBroker, ingest: IngestService, tmp_path: Path
) -> None:
    ingest.stop()  # its persistent session stays on the broker and queues QoS 1 messages
    node_id = "node-queued"
    outbox = Outbox(tmp_path / "edge.db")
    messages = [m for _ in range(10) for m in lifecycle(uuid.uuid4(), updates=1, node_id=node_id)]
    enqueue_all(outbox, messages)
    publisher = Publisher(settings_for(durable_broker, node_id), tmp_path / "edge.db")
    publisher.start()
    try:
        wait_until(lambda: outbox.backlog() == 0, 10, "the broker to acknowledge every event")
        assert stored_events(ingest.database.path) == []
        restarted = IngestService(
            settings_for(durable_broker, "review-ingest"), ingest.database.path, ingest.evidence_dir
        )
        restarted.start()
        try:
            wait_until(
                lambda: len(stored_events(ingest.database.path)) >= len(messages),
                20,
                "queued events after restart",
            )
            assert_complete_and_ordered(ingest.database.path, messages)
            with sqlite_utils.Database(ingest.database.path) as db:
                node = wait_until(
                    lambda: db.execute("SELECT status FROM nodes WHERE node_id = ?", [node_id]).fetchone(),
                    10,
                    "node status",
                )
                assert node[0] == "online"
        finally:
            restarted.stop()
    finally:
        publisher.stop()
        outbox.close()


def test_a_broker_crash_with_events_it_acknowledged_loses_nothing(tmp_path: Path) -> None:
    """Issue 10 case 3, the chaos test: events flowing, the ingest down, the broker (no disk: the
    worst case) killed with -9 and restarted, the ingest restarted: every event stored once."""
    broker = MosquittoBroker(tmp_path / "broker", persistence=False)
    broker.start()
    node_id = "node-chaos"
    db_path = tmp_path / "review.db"
    ingest = IngestService(settings_for(broker, "review-ingest"), db_path, tmp_path / "evidence")
    ingest.start()
    assert ingest.wait_subscribed(10)
    outbox = Outbox(tmp_path / "edge.db")
    first = [m for _ in range(20) for m in lifecycle(uuid.uuid4(), updates=2, node_id=node_id)]
    later = [m for _ in range(20) for m in lifecycle(uuid.uuid4(), updates=2, node_id=node_id)]
    publisher = Publisher(
        settings_for(broker, node_id), tmp_path / "edge.db", ack_timeout_s=2.0, resend_check_s=0.5
    )
    publisher.start()
    try:
        enqueue_all(outbox, first)
        wait_until(lambda: len(stored_events(db_path)) == len(first), 20, "the first events stored")
        wait_until(lambda: outbox.unacked()[0] == 0, 10, "the centre to acknowledge them")
        ingest.stop()  # its session stays on the broker, which queues for it (in memory only)
        enqueue_all(outbox, later)
        wait_until(lambda: outbox.backlog() == 0, 20, "the broker to PUBACK every later event")
        assert outbox.unacked()[0] == len(later)  # PUBACKed, not stored: the rows stay
        broker.kill()  # the queued events are gone with it
        broker.start()
        ingest = IngestService(settings_for(broker, "review-ingest"), db_path, tmp_path / "evidence")
        ingest.start()
        assert ingest.wait_subscribed(10)
        wait_until(
            lambda: len(stored_events(db_path)) == len(first) + len(later), 60, "the re-sent events stored"
        )
        wait_until(lambda: outbox.unacked()[0] == 0, 20, "every event acknowledged")
        stored = stored_events(db_path)
        assert sorted(stored) == sorted((str(m.incident_id), m.seq) for m in first + later)
        assert len(stored) == len(set(stored))  # exactly once
    finally:
        publisher.stop()
        ingest.stop()
        outbox.close()
        broker.stop()
