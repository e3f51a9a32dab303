"""What the city-scale broker tests share: an edge node (Outbox + Publisher) and the centre's
ingest on whatever broker address they are given, and what the review database holds."""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlite_utils

from tests.uplink.helpers import lifecycle
from uplink.ingest_service import IngestService
from uplink.messages import ConfigMessage, IncidentMessage
from uplink.mqtt import new_client
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.settings import MqttSettings
from uplink.topics import Topics

TOPICS = Topics()  # the deploy templates' ACLs are written for the default prefix, curbwatch/v1


@dataclass
class Edge:
    """One node: its outbox (the edge's own connection) and its publisher."""

    outbox: Outbox
    publisher: Publisher
    configs: queue.Queue[ConfigMessage]

    @classmethod
    def start(cls, settings: MqttSettings, workdir: Path, ack_timeout_s: float) -> Edge:
        workdir.mkdir()
        configs: queue.Queue[ConfigMessage] = queue.Queue()
        publisher = Publisher(
            settings,
            workdir / "edge.db",
            on_config=configs.put,
            ack_timeout_s=ack_timeout_s,
            resend_check_s=0.5,  # re-send within the test's time once ack_timeout_s has passed
        )
        edge = cls(Outbox(workdir / "edge.db"), publisher, configs)
        publisher.start()
        assert publisher.wait_connected(15), f"{settings.client_id} did not connect to {settings.port}"
        return edge

    def send(self, messages: list[IncidentMessage]) -> None:
        with self.outbox.transaction():
            for message in messages:
                self.outbox.enqueue(message, TOPICS.incident(message.node_id, message.camera_id))
        self.publisher.notify()

    def all_acknowledged(self) -> bool:
        """Nothing unsent and nothing the centre has not acknowledged storing (curbwatch.ack/1)."""
        return self.outbox.backlog() == 0 and self.outbox.unacked()[0] == 0

    def stop(self) -> None:
        self.publisher.stop(flush_timeout_s=1)
        self.outbox.close()


def start_ingest(settings: MqttSettings, workdir: Path) -> IngestService:
    ingest = IngestService(settings, workdir / "review.db", workdir / "evidence")
    ingest.start()
    assert ingest.wait_subscribed(15), f"the ingest did not subscribe on port {settings.port}"
    return ingest


def incidents(node: str, count: int, updates: int = 1) -> list[IncidentMessage]:
    return [m for _ in range(count) for m in lifecycle(uuid.uuid4(), updates=updates, node_id=node)]


def keys(messages: list[IncidentMessage]) -> list[tuple[str, int]]:
    return sorted((str(m.incident_id), m.seq) for m in messages)


def stored_events(db_path: Path) -> list[tuple[str, int]]:
    if not db_path.exists():
        return []
    with sqlite_utils.Database(db_path) as db:
        return sorted((r[0], r[1]) for r in db.execute("SELECT incident_id, seq FROM incident_events"))


def dead_letters(db_path: Path) -> list[str]:
    with sqlite_utils.Database(db_path) as db:
        return [str(r[0]) for r in db.execute("SELECT reason FROM dead_letters")]


def node_status(db_path: Path, node: str) -> str | None:
    with sqlite_utils.Database(db_path) as db:
        row = db.execute("SELECT status FROM nodes WHERE node_id = ?", [node]).fetchone()
    return None if row is None else str(row[0])


def config(node: str, version: int) -> ConfigMessage:
    issued_at = datetime(2026, 5, 1, tzinfo=UTC)
    return ConfigMessage(node_id=node, version=version, issued_at=issued_at, cameras={"cam-01": "zones: []"})


class Watcher:
    """A plain client recording what it receives on its filters (to count what went on the wire)."""

    def __init__(self, settings: MqttSettings, filters: list[str]) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        self.client = new_client(settings)
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in filters])
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise AssertionError(f"watcher on {filters} got no SUBACK")

    def received(self, quiet_s: float = 0.5) -> list[mqtt.MQTTMessage]:
        """Everything that arrived until nothing came for quiet_s."""
        got = []
        while True:
            try:
                got.append(self.messages.get(timeout=quiet_s))
            except queue.Empty:
                return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
