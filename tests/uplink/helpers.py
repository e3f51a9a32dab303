"""Test material for uplink: message factories, bounded waits, a collecting MQTT subscriber."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from uplink.messages import IncidentEventKind, IncidentMessage, Shop
from uplink.settings import MqttSettings

T0 = datetime(2026, 5, 1, 2, 0, 0, tzinfo=UTC)
NODE = "node-a"
CAMERA = "cam-01"


def incident(
    incident_id: uuid.UUID,
    seq: int,
    event: IncidentEventKind = IncidentEventKind.UPDATED,
    *,
    node_id: str = NODE,
    camera_id: str = CAMERA,
    label: str = "chair",
    **overrides: Any,
) -> IncidentMessage:
    fields: dict[str, Any] = {
        "incident_id": incident_id,
        "seq": seq,
        "event": event,
        "node_id": node_id,
        "camera_id": camera_id,
        "zone_id": "door-12-sidewalk",
        "shop": Shop(id="shop-12", name="东街12号"),
        "label": label,
        "confidence": 0.8,
        "bbox": (0.1, 0.5, 0.3, 0.9),
        "first_seen_at": T0,
        "at": T0 + timedelta(seconds=60 + 30 * seq),
    }
    fields.update(overrides)
    return IncidentMessage(**fields)


def lifecycle(incident_id: uuid.UUID, updates: int = 1, **kwargs: Any) -> list[IncidentMessage]:
    """opened, `updates` x updated, cleared, with seq 0..updates+1."""
    events = [IncidentEventKind.OPENED, *[IncidentEventKind.UPDATED] * updates, IncidentEventKind.CLEARED]
    return [incident(incident_id, seq, event, **kwargs) for seq, event in enumerate(events)]


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.02) -> Any:
    """Poll a condition that has no event to wait on (rows in another process's database)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last value: {value!r})")
        time.sleep(interval_s)


def settings_for(broker: Any, client_id: str, **extra: Any) -> MqttSettings:
    return MqttSettings(host=broker.host, port=broker.port, client_id=client_id, keepalive_s=5, **extra)


class Collector:
    """A plain paho subscriber that records every message, for asserting what went on the wire."""

    def __init__(self, broker: Any, topic: str, client_id: str = "test-collector") -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError(f"collector could not subscribe to {topic}")

    def next(self, timeout_s: float = 10.0) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout_s} s") from None

    def until(
        self, predicate: Callable[[mqtt.MQTTMessage], bool], timeout_s: float = 10.0
    ) -> mqtt.MQTTMessage:
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            if predicate(message):
                return message

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
