"""Two ingest worker processes on one Mosquitto ($share group) and one database: the
stream is split, a re-sent event is stored once whichever worker gets it, and a worker killed
with SIGKILL mid-stream costs nothing (the edge re-sends what the centre did not acknowledge)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.broker import MosquittoBroker
from tests.support.database import review_db_for
from tests.uplink.helpers import incident, lifecycle, settings_for, wait_until
from uplink.database import open_database
from uplink.messages import to_json
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.settings import MqttSettings
from uplink.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
T = Topics()


def start_worker(broker: MosquittoBroker, client_id: str, tmp_path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uplink.ingest_worker", "--port", str(broker.port)),
            *("--client-id", client_id, "--shared-group", "ingest"),
            *("--db", review_db_for(tmp_path), "--evidence-dir", str(tmp_path / "evidence")),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "subscribed":
        process.kill()
        raise AssertionError(f"worker {client_id} did not subscribe (said {line!r}, rc {process.wait()})")
    return process


@pytest.fixture
def workers(durable_broker: MosquittoBroker, tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    # The first worker migrates the database before the second opens it.
    running = [start_worker(durable_broker, "ingest-1", tmp_path)]
    running.append(start_worker(durable_broker, "ingest-2", tmp_path))
    yield running
    for process in running:
        process.terminate()
    for process in running:
        process.wait(10)


def events(where: str) -> list[tuple[str, int]]:
    db = open_database(where)
    try:
        return [(r[0], r[1]) for r in db.execute("SELECT incident_id, seq FROM incident_events")]
    finally:
        db.close()


def test_the_same_event_through_both_workers_is_stored_once(
    durable_broker: MosquittoBroker, workers: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    """Mosquitto hands consecutive messages of a group to different members: the copies race
    in two processes, and the (incident_id, seq) key in the database keeps one."""
    incident_id = uuid.uuid4()
    payload = to_json(incident(incident_id, 0))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="resender")
    client.connect(durable_broker.host, durable_broker.port)
    client.loop_start()
    try:
        for _ in range(6):
            client.publish(T.incident("node-a", "cam-01"), payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
    db_path = review_db_for(tmp_path)
    wait_until(lambda: events(db_path), 10, "the event stored")
    db = open_database(db_path)
    assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
    assert [tuple(r) for r in db.execute("SELECT last_seq, state FROM incidents")] == [(0, "open")]
    db.close()
    assert events(db_path) == [(str(incident_id), 0)]


def test_a_worker_killed_mid_stream_loses_and_duplicates_nothing(
    durable_broker: MosquittoBroker, workers: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    node = "node-fleet"
    db_path = review_db_for(tmp_path)
    outbox = Outbox(tmp_path / "edge.db")
    settings: MqttSettings = settings_for(durable_broker, node)
    # A short end-to-end ack timeout: what the killed worker had received but not committed
    # stays in its dead session on the broker, so only the edge's re-send brings it back.
    publisher = Publisher(settings, tmp_path / "edge.db", ack_timeout_s=3, resend_check_s=0.5)
    messages = [m for _ in range(150) for m in lifecycle(uuid.uuid4(), updates=2, node_id=node)]
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        half = len(messages) // 2
        for start in range(0, half, 50):
            with outbox.transaction():
                for message in messages[start : start + 50]:
                    outbox.enqueue(message, T.incident(node, message.camera_id))
            publisher.notify()
        wait_until(lambda: len(events(db_path)) >= 60, 20, "the stream under way")
        workers[0].kill()
        workers[0].wait()
        stored_at_kill = len(events(db_path))
        assert stored_at_kill < len(messages), "the stream was over before the kill: proves nothing"
        with outbox.transaction():
            for message in messages[half:]:
                outbox.enqueue(message, T.incident(node, message.camera_id))
        publisher.notify()
        wait_until(lambda: len(events(db_path)) >= len(messages), 60, "every event stored")
        wait_until(lambda: outbox.unacked()[0] == 0 and outbox.backlog() == 0, 30, "every event acked")
        stored = events(db_path)
        assert len(stored) == len(set(stored)) == len(messages)
        assert set(stored) == {(str(m.incident_id), m.seq) for m in messages}
        db = open_database(db_path)
        assert {r[0] for r in db.execute("SELECT state FROM incidents")} == {"cleared"}
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
        db.close()
    finally:
        publisher.stop(flush_timeout_s=2)
        outbox.close()


@pytest.mark.parametrize("group", ["", "a/b", "#", "+", "$share", "x" * 65])
def test_a_shared_group_that_cannot_be_a_topic_level_is_refused(group: str) -> None:
    with pytest.raises(ValueError, match="shared_group"):
        MqttSettings(client_id="ingest-1", shared_group=group)
