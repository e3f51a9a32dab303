"""The wire contract on each broker: the real Outbox, Publisher and IngestService over Mosquitto,
NATS's MQTT gateway and RabbitMQ's MQTT plugin. Where a broker lacks a feature the test pins
what it does instead (docs/brokers.md), so an upgrade that changes it shows up here."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlite_utils
from pydantic import SecretStr

from tests.support.brokers import CENTRE_USER, ContractBroker
from tests.uplink.helpers import lifecycle, wait_until
from uplink.config_publish import publish_config
from uplink.ingest_service import IngestService
from uplink.messages import ConfigMessage, IncidentMessage, NodeState
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.settings import MqttSettings
from uplink.topics import Topics

ROOT = Path(__file__).resolve().parents[2]


def settings(broker: ContractBroker, client_id: str, prefix: str, user: str | None = None) -> MqttSettings:
    account = broker.account(user or client_id)
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        prefix=prefix,
        client_id=client_id,
        keepalive_s=5,
        reconnect_max_s=2,
        username=account.username if account else None,
        password=SecretStr(account.password) if account else None,
    )


class Subscriber:
    """A plain paho client that records what it receives on its subscriptions."""

    def __init__(self, broker: ContractBroker, client_id: str, filters: list[str], user: str | None = None):
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.granted: list[int] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        account = broker.account(user or client_id)
        if account is not None:
            self.client.username_pw_set(account.username, account.password)
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in filters])
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError(f"{client_id} got no SUBACK for {filters}")

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, reasons: list, _p: object) -> None:
        self.granted = [reason.value for reason in reasons]
        self._subscribed.set()

    def drain(self, quiet_s: float = 1.0) -> list[mqtt.MQTTMessage]:
        """Everything received until nothing came for quiet_s."""
        received = []
        while True:
            try:
                received.append(self.messages.get(timeout=quiet_s))
            except queue.Empty:
                return received

    def until(self, topic: str, payload: bytes, timeout_s: float = 15.0) -> list[mqtt.MQTTMessage]:
        """What arrived up to and including the first (topic, payload) match."""
        seen = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(message)
            if message.topic == topic and message.payload == payload:
                return seen
        raise AssertionError(f"no {payload!r} on {topic} within {timeout_s} s; got {[m.topic for m in seen]}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored_events(db_path: Path) -> list[tuple[str, int]]:
    if not db_path.exists():
        return []
    with sqlite_utils.Database(db_path) as db:
        return [(r[0], r[1]) for r in db.execute("SELECT incident_id, seq FROM incident_events")]


def enqueue(outbox: Outbox, topics: Topics, messages: list[IncidentMessage]) -> None:
    with outbox.transaction():
        for message in messages:
            outbox.enqueue(message, topics.incident(message.node_id, message.camera_id))


# -- QoS 1, persistent sessions, the end-to-end ack --------------------------------------------


def test_incidents_reach_the_ingest_once_and_the_node_hears_they_are_stored(
    broker: ContractBroker, prefix: str, tmp_path: Path
) -> None:
    node = "node-flow"
    db_path = tmp_path / "review.db"
    ingest = IngestService(
        settings(broker, f"ingest-{prefix[:10]}", prefix, CENTRE_USER), db_path, tmp_path / "ev"
    )
    ingest.start()
    outbox = Outbox(tmp_path / "edge.db")
    publisher = Publisher(settings(broker, node, prefix), tmp_path / "edge.db", ack_timeout_s=60)
    messages = [m for _ in range(20) for m in lifecycle(uuid.uuid4(), updates=2, node_id=node)]
    try:
        assert ingest.wait_subscribed(10), "ingest did not subscribe"
        publisher.start()
        assert publisher.wait_connected(10)
        enqueue(outbox, Topics(prefix), messages)
        publisher.notify()
        wait_until(lambda: len(stored_events(db_path)) >= len(messages), 30, "all events stored")
        # The centre's curbwatch.ack/1 came back over the broker: the node let every row go.
        wait_until(lambda: outbox.unacked()[0] == 0 and outbox.backlog() == 0, 30, "end-to-end acks")
        assert sorted(stored_events(db_path)) == sorted((str(m.incident_id), m.seq) for m in messages)
    finally:
        publisher.stop(flush_timeout_s=2)
        ingest.stop()
        outbox.close()


def test_the_broker_keeps_qos1_events_for_an_ingest_that_is_away(
    broker: ContractBroker, prefix: str, tmp_path: Path
) -> None:
    """clean_session=False: PUBACKed events wait in the ingest's session until it is back."""
    node = "node-away"
    db_path = tmp_path / "review.db"
    ingest_settings = settings(broker, f"ingest-{prefix[:10]}", prefix, CENTRE_USER)
    first = IngestService(ingest_settings, db_path, tmp_path / "ev")
    first.start()
    assert first.wait_subscribed(10), "ingest did not subscribe"
    first.stop()
    outbox = Outbox(tmp_path / "edge.db")
    publisher = Publisher(settings(broker, node, prefix), tmp_path / "edge.db", ack_timeout_s=None)
    messages = [m for _ in range(10) for m in lifecycle(uuid.uuid4(), updates=1, node_id=node)]
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        enqueue(outbox, Topics(prefix), messages)
        publisher.notify()
        wait_until(lambda: outbox.backlog() == 0, 20, "every event PUBACKed by the broker")
        assert stored_events(db_path) == []
        back = IngestService(ingest_settings, db_path, tmp_path / "ev")
        back.start()
        try:
            wait_until(lambda: len(stored_events(db_path)) >= len(messages), 30, "queued events delivered")
        finally:
            back.stop()
        assert sorted(stored_events(db_path)) == sorted((str(m.incident_id), m.seq) for m in messages)
    finally:
        publisher.stop(flush_timeout_s=2)
        outbox.close()


# -- retained config, Last Will ----------------------------------------------------------------


def test_retained_config_reaches_a_node_that_connects_later(
    broker: ContractBroker, prefix: str, tmp_path: Path
) -> None:
    node = "node-late"
    config = ConfigMessage(
        node_id=node, version=3, issued_at=datetime(2026, 5, 1, tzinfo=UTC), cameras={"cam-01": "zones: []"}
    )
    publish_config(settings(broker, "review-config", prefix, CENTRE_USER), node, config)
    received: queue.Queue[ConfigMessage] = queue.Queue()
    publisher = Publisher(settings(broker, node, prefix), tmp_path / "edge.db", on_config=received.put)
    publisher.start()
    try:
        assert received.get(timeout=15).version == 3
    finally:
        publisher.stop(flush_timeout_s=1)
        _clear_retained(broker, prefix, Topics(prefix).node_config(node))


def test_last_will_marks_a_killed_node_offline(broker: ContractBroker, prefix: str, tmp_path: Path) -> None:
    node = "node-will"
    topic = Topics(prefix).node_status(node)
    watcher = Subscriber(broker, f"watch-{prefix[:10]}", [topic], user=CENTRE_USER)
    account = broker.account(node)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.brokers.node_process", broker.host, str(broker.port), prefix, node]
        + [str(tmp_path / "edge.db")]
        + ([account.username, account.password] if account else []),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "connected"
        watcher.until(topic, NodeState.ONLINE.value.encode())
        process.send_signal(signal.SIGKILL)
        process.wait()
        watcher.until(topic, NodeState.OFFLINE.value.encode(), timeout_s=20)
    finally:
        process.kill()
        process.wait()
        watcher.close()
        _clear_retained(broker, prefix, topic)


def _clear_retained(broker: ContractBroker, prefix: str, topic: str) -> None:
    """Empty retained payload: the shared RabbitMQ keeps no leftovers of this test."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"clear-{prefix[:10]}")
    account = broker.account(CENTRE_USER)
    if account is not None:
        client.username_pw_set(account.username, account.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


# -- what differs between brokers ---------------------------------------------------------------


def _publish_all(
    broker: ContractBroker, client_id: str, items: list[tuple[str, bytes]], retain: bool = False
) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for topic, payload in items:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_shared_subscriptions_split_the_stream_where_the_broker_has_them(
    broker: ContractBroker, prefix: str
) -> None:
    shared = f"$share/ingest/{prefix}/+/+/incident"
    workers = [Subscriber(broker, f"w{i}-{prefix[:10]}", [shared]) for i in range(2)]
    plain = Subscriber(broker, f"plain-{prefix[:10]}", [f"{prefix}/+/+/incident"])
    payloads = [f"event-{i}".encode() for i in range(30)]
    try:
        _publish_all(
            broker, f"pub-{prefix[:10]}", [(f"{prefix}/node-a/cam-01/incident", p) for p in payloads]
        )
        assert sorted(m.payload for m in plain.drain()) == sorted(payloads)
        got = [[m.payload for m in worker.drain(quiet_s=0.5)] for worker in workers]
    finally:
        for client in (*workers, plain):
            client.close()
    if broker.capabilities.shared_subscriptions:
        assert all(got), f"one worker got nothing: {[len(g) for g in got]}"
        assert sorted(got[0] + got[1]) == sorted(payloads), "lost or duplicated across the group"
    else:
        # Accepted as a literal topic that no node publishes to: a silent gap, hence the docs.
        assert got == [[], []]


def test_retained_messages_on_a_wildcard_subscription(broker: ContractBroker, prefix: str) -> None:
    topic = f"{prefix}/node-r/status"
    _publish_all(broker, f"pub-{prefix[:10]}", [(topic, b"online")], retain=True)
    try:
        exact = Subscriber(broker, f"exact-{prefix[:10]}", [topic])
        wildcard = Subscriber(broker, f"wild-{prefix[:10]}", [f"{prefix}/+/status"])
        try:
            assert [m.payload for m in exact.drain()] == [b"online"]  # what the edge's config relies on
            got = [m.payload for m in wildcard.drain(quiet_s=0.5)]
        finally:
            exact.close()
            wildcard.close()
        assert got == ([b"online"] if broker.capabilities.retained_on_wildcard else [])
    finally:
        _clear_retained(broker, prefix, topic)


def test_qos2_is_not_part_of_the_contract_everywhere(broker: ContractBroker, prefix: str) -> None:
    topic = f"{prefix}/q2"
    subscriber = Subscriber(broker, f"q2sub-{prefix[:10]}", [topic])
    subscriber.client.subscribe(topic, qos=2)
    time.sleep(0.3)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"q2pub-{prefix[:10]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(topic, b"exactly-once?", qos=2)
        with contextlib.suppress(RuntimeError):  # NATS closes the connection on a QoS 2 PUBLISH
            info.wait_for_publish(3)
        received = subscriber.drain(quiet_s=1.0)
    finally:
        client.disconnect()
        client.loop_stop()
        subscriber.close()
    if broker.capabilities.qos2:
        assert [(m.payload, m.qos) for m in received] == [(b"exactly-once?", 2)]
    else:
        assert all(m.qos < 2 for m in received), "QoS 2 delivered where the broker claims none"


# -- ACL-separated nodes -----------------------------------------------------------------------


def test_a_node_publishes_only_under_its_own_id(acl_broker: ContractBroker) -> None:
    prefix = acl_broker.prefix
    topics = Topics(prefix)
    centre = Subscriber(acl_broker, "centre-watch", [f"{prefix}/#"], user=CENTRE_USER)
    own, forged = topics.incident("node-a", "cam-01"), topics.incident("node-b", "cam-01")
    node_a = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="node-a", protocol=mqtt.MQTTv311)
    account = acl_broker.account("node-a")
    assert account is not None
    node_a.username_pw_set(account.username, account.password)
    node_a.connect(acl_broker.host, acl_broker.port)
    node_a.loop_start()
    try:
        node_a.publish(own, b"mine", qos=1).wait_for_publish(5)
        node_a.publish(forged, b"forged", qos=0)  # QoS 0: paho would resend a refused QoS 1 forever
        time.sleep(0.5)
        _publish_as(acl_broker, "node-a", own, b"marker")
        seen = centre.until(own, b"marker")
        assert [(m.topic, m.payload) for m in seen if m.topic in (own, forged)] == [
            (own, b"mine"),
            (own, b"marker"),
        ]
    finally:
        node_a.disconnect()
        node_a.loop_stop()
        centre.close()


def test_a_node_reads_its_own_config_and_not_another_nodes(acl_broker: ContractBroker) -> None:
    topics = Topics(acl_broker.prefix)
    _publish_as(acl_broker, CENTRE_USER, topics.node_config("node-b"), b"for-b", retain=True)
    _publish_as(acl_broker, CENTRE_USER, topics.node_config("node-a"), b"for-a", retain=True)
    try:
        own = Subscriber(acl_broker, "node-a", [topics.node_config("node-a")])
        try:
            assert [m.payload for m in own.drain()] == [b"for-a"]
        finally:
            own.close()
        # Refused three ways: Mosquitto grants and delivers nothing, NATS logs a violation,
        # RabbitMQ closes the connection without a SUBACK. None may deliver node-b's config.
        spy = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="node-a-spy", protocol=mqtt.MQTTv311)
        account = acl_broker.account("node-a")
        assert account is not None
        spy.username_pw_set(account.username, account.password)
        stolen: queue.Queue[bytes] = queue.Queue()
        spy.on_message = lambda _c, _u, message: stolen.put(bytes(message.payload))
        spy.on_connect = lambda c, *_: c.subscribe(topics.node_config("node-b"), qos=1)
        spy.connect(acl_broker.host, acl_broker.port)
        spy.loop_start()
        try:
            with pytest.raises(queue.Empty):
                stolen.get(timeout=1.5)
        finally:
            spy.disconnect()
            spy.loop_stop()
    finally:
        for node in ("node-a", "node-b"):
            _publish_as(acl_broker, CENTRE_USER, topics.node_config(node), b"", retain=True)


def _publish_as(broker: ContractBroker, user: str, topic: str, payload: bytes, retain: bool = False) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-once", protocol=mqtt.MQTTv311)
    account = broker.account(user)
    assert account is not None
    client.username_pw_set(account.username, account.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)
        if not info.is_published():
            raise AssertionError(f"{user}: no PUBACK for {topic}")
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("hostile", ["", "no/wildcards/#", "a//b"])
def test_a_prefix_that_cannot_be_a_topic_is_refused(hostile: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        Topics(hostile)
