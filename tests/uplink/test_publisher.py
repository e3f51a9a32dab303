"""The publisher against a real Mosquitto: order, PUBACK-only marking, window, will, config."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from tests.support.broker import MosquittoBroker
from tests.uplink.helpers import CAMERA, T0, Collector, lifecycle, settings_for, wait_until
from uplink.config_publish import publish_config
from uplink.messages import CameraState, CameraStatus, ConfigMessage, IncidentMessage, NodeHealth
from uplink.outbox import Outbox
from uplink.publisher import HealthProbe, Publisher
from uplink.settings import MqttSettings
from uplink.topics import Topics

T = Topics()


@pytest.fixture
def node_id() -> str:
    return f"node-{uuid.uuid4().hex[:8]}"  # the session broker keeps retained state between tests


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "edge.db")
    yield box
    box.close()


class HeldAcks:
    """Sits between paho and the publisher's on_publish, so a test decides when PUBACKs land."""

    def __init__(self, publisher: Publisher) -> None:
        self._forward = publisher.client.on_publish
        self.held: list[tuple[Any, ...]] = []
        self._passthrough = False
        self._changed = threading.Condition()
        publisher.client.on_publish = self._hold

    def _hold(self, *args: Any) -> None:
        with self._changed:
            if not self._passthrough:
                self.held.append(args)
                self._changed.notify_all()
                return
        assert self._forward is not None
        self._forward(*args)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.held) >= count, timeout_s):
                raise AssertionError(f"{len(self.held)} PUBACKs within {timeout_s} s, expected {count}")

    def release(self) -> None:
        """Deliver the held PUBACKs and stop holding."""
        assert self._forward is not None
        with self._changed:
            held, self.held, self._passthrough = self.held, [], True
        for args in held:
            self._forward(*args)


def test_events_arrive_in_order_and_are_marked_sent_only_after_puback(
    broker: MosquittoBroker, outbox: Outbox, node_id: str, tmp_path: Path
) -> None:
    topic = T.incident(node_id, CAMERA)
    collector = Collector(broker, f"{T.prefix}/{node_id}/+/incident")
    publisher = Publisher(settings_for(broker, node_id), tmp_path / "edge.db", health_interval_s=3600)
    acks = HeldAcks(publisher)
    messages = [m for _ in range(3) for m in lifecycle(uuid.uuid4(), updates=2, node_id=node_id)]
    for message in messages:
        outbox.enqueue(message, topic)
    publisher.start()
    try:
        # 12 events + 'online' + the first health: all acknowledged by the broker, none settled
        acks.wait_for(len(messages) + 2)
        received = [IncidentMessage.model_validate_json(collector.next().payload) for _ in messages]
        assert [(m.incident_id, m.seq) for m in received] == [(m.incident_id, m.seq) for m in messages]
        assert outbox.backlog() == len(messages), "a row was marked sent without its PUBACK"
        acks.release()
        wait_until(lambda: outbox.backlog() == 0, 10, "rows marked sent after the PUBACKs")
        assert publisher.stats().acknowledged == len(messages)
    finally:
        assert publisher.stop(flush_timeout_s=5) == 0
        collector.close()


def test_in_flight_window_is_bounded(
    broker: MosquittoBroker, outbox: Outbox, node_id: str, tmp_path: Path
) -> None:
    publisher = Publisher(
        settings_for(broker, node_id), tmp_path / "edge.db", window=3, health_interval_s=3600
    )
    acks = HeldAcks(publisher)
    for message in lifecycle(uuid.uuid4(), updates=8, node_id=node_id):
        outbox.enqueue(message, T.incident(node_id, CAMERA))
    publisher.start()
    try:
        acks.wait_for(3 + 2)  # the window, 'online' and the first health
        publisher.notify()
        time.sleep(0.3)  # several drain cycles: nothing more may go out while 3 are unacknowledged
        assert publisher.stats().published == 3 and publisher.stats().in_flight == 3
        acks.release()
        wait_until(lambda: outbox.backlog() == 0, 10, "the rest, window by window")
        assert publisher.stats().published == 10
    finally:
        acks.release()
        publisher.stop(flush_timeout_s=2)


def test_status_health_camera_state_and_graceful_offline(
    broker: MosquittoBroker, node_id: str, tmp_path: Path
) -> None:
    Outbox(tmp_path / "edge.db").close()
    collector = Collector(broker, f"{T.prefix}/{node_id}/#")
    publisher = Publisher(
        settings_for(broker, node_id),
        tmp_path / "edge.db",
        health_interval_s=3600,
        health_probe=lambda: HealthProbe(config_version=4, software_version="0.1.0"),
        clock=lambda: T0,
    )
    publisher.start()
    try:
        assert collector.until(lambda m: m.topic == T.node_status(node_id)).payload == b"online"
        health = NodeHealth.model_validate_json(
            collector.until(lambda m: m.topic == T.node_health(node_id)).payload
        )
        assert (health.node_id, health.config_version, health.outbox_backlog, health.at) == (
            node_id,
            4,
            0,
            T0,
        )
        publisher.publish_camera_status(
            CameraStatus(node_id=node_id, camera_id=CAMERA, state=CameraState.STREAMING, at=T0)
        )
        publisher.publish_snapshot(CAMERA, b"\xff\xd8\xff old")
        publisher.publish_snapshot(CAMERA, b"\xff\xd8\xff new")
        snapshot = collector.until(lambda m: m.topic == T.snapshot(node_id, CAMERA))
        assert snapshot.payload in (b"\xff\xd8\xff old", b"\xff\xd8\xff new")
    finally:
        publisher.stop()
    offline = collector.until(lambda m: m.topic == T.node_status(node_id) and m.payload == b"offline")
    assert offline.payload == b"offline"
    collector.close()
    late = Collector(
        broker, f"{T.prefix}/{node_id}/#", client_id="late-joiner"
    )  # retained state for newcomers
    retained: dict[str, bytes | bytearray] = {}
    while len(retained) < 4:
        message = late.next()
        retained[message.topic] = message.payload
    assert retained[T.node_status(node_id)] == b"offline"
    assert retained[T.snapshot(node_id, CAMERA)] == b"\xff\xd8\xff new", "latest snapshot wins"
    assert b'"streaming"' in retained[T.camera_status(node_id, CAMERA)]
    late.close()


def test_retained_config_reaches_the_node(broker: MosquittoBroker, node_id: str, tmp_path: Path) -> None:
    config = ConfigMessage(
        node_id=node_id, version=3, issued_at=datetime.now(UTC), cameras={CAMERA: "zones: []\n"}
    )
    publish_config(settings_for(broker, "review-server"), node_id, config)
    received: list[ConfigMessage] = []
    arrived = threading.Event()
    Outbox(tmp_path / "edge.db").close()

    def on_config(message: ConfigMessage) -> None:
        received.append(message)
        arrived.set()

    publisher = Publisher(settings_for(broker, node_id), tmp_path / "edge.db", on_config=on_config)
    publisher.start()
    try:
        assert arrived.wait(10), "retained config not delivered after connect"
        assert received == [config]
    finally:
        publisher.stop()


def test_publish_config_refuses_a_config_for_another_node(broker: MosquittoBroker) -> None:
    config = ConfigMessage(node_id="node-x", version=1, issued_at=datetime.now(UTC), cameras={})
    with pytest.raises(ValueError, match="node-x"):
        publish_config(settings_for(broker, "review-server"), "node-y", config)


def _retain(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    """Publish as a review server would, but bytes that no ConfigMessage accepts."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize(
    ("payload", "version", "problem"),
    [
        (
            b'{"schema": "curbwatch.config/1", "version": 9, "cameras": {}}',
            9,
            "config v9: node_id: Field required",
        ),
        (b'{"schema": "curbwatch.config/1", "version": ', None, "config message: (message): Invalid JSON"),
        (
            b'{"schema": "curbwatch.config/1", "node_id": "node-other", "version": 2,'
            b' "issued_at": "2026-05-01T02:00:00Z", "cameras": {}}',
            2,
            "config v2: node_id: is 'node-other', expected ",
        ),
    ],
    ids=["missing-fields", "not-json", "other-node"],
)
def test_unreadable_retained_config_reaches_the_rejection_callback(
    broker: MosquittoBroker, node_id: str, tmp_path: Path, payload: bytes, version: int | None, problem: str
) -> None:
    _retain(broker, T.node_config(node_id), payload)
    rejected: list[tuple[int | None, list[str]]] = []
    accepted: list[ConfigMessage] = []
    arrived = threading.Event()

    def on_rejected(version: int | None, problems: Any) -> None:
        rejected.append((version, list(problems)))
        arrived.set()

    Outbox(tmp_path / "edge.db").close()
    publisher = Publisher(
        settings_for(broker, node_id),
        tmp_path / "edge.db",
        on_config=accepted.append,
        on_config_rejected=on_rejected,
    )
    publisher.start()
    try:
        assert arrived.wait(10), "the rejection was only logged"
        ((got_version, problems),) = rejected
        assert got_version == version and problems[0].startswith(problem), problems
        assert accepted == []
    finally:
        publisher.stop()
        _retain(broker, T.node_config(node_id), b"")  # clear the retained config


def test_an_unreachable_broker_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Without a log line, a node whose broker is down or mistyped would say nothing at all."""
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = MqttSettings(host="127.0.0.1", port=port, client_id="node-unreachable", reconnect_max_s=1)
    publisher = Publisher(settings, tmp_path / "edge.sqlite")
    with caplog.at_level("WARNING", logger="uplink.mqtt"):
        publisher.start()
        try:
            wait_until(lambda: "cannot connect to broker" in caplog.text, 10, "a connect-failure warning")
        finally:
            publisher.stop(flush_timeout_s=0.1)
    assert f"node-unreachable: cannot connect to broker 127.0.0.1:{port}" in caplog.text
