"""A plain paho client for tests: publish like an edge node, collect what the server publishes."""

from __future__ import annotations

import queue
import threading

import paho.mqtt.client as mqtt

from tests.support.broker import MosquittoBroker


class EdgeLike:
    def __init__(self, broker: MosquittoBroker, client_id: str, subscribe: str | None = None) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.subscribe = subscribe
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put(m)
        self.client.connect(broker.host, broker.port, 30)
        self.client.loop_start()
        if subscribe is None:
            self._ready.set()
        assert self._ready.wait(10), "MQTT test client did not get ready"

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        if self.subscribe is not None:
            client.subscribe(self.subscribe, qos=1)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def next(self, timeout_s: float = 10) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
