"""A subscription the broker refuses (SUBACK 0x80: a clustered broker electing a leader, as
tests/brokers/test_nats_cluster.py saw on NATS) is asked for again, so the node does not stay
deaf to acks and configs until its next reconnect. The refusal is injected at the SUBACK
callback; the retry goes to a real Mosquitto."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.broker import MosquittoBroker
from tests.uplink.helpers import NODE, incident, settings_for, wait_until
from uplink.ingest_service import IngestService
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.topics import Topics

T = Topics()


def test_a_refused_ack_subscription_is_asked_for_again(
    durable_broker: MosquittoBroker, tmp_path: Path
) -> None:
    ingest = IngestService(
        settings_for(durable_broker, "review-ingest"), tmp_path / "review.db", tmp_path / "evidence"
    )
    outbox = Outbox(tmp_path / "edge.db")
    publisher = Publisher(settings_for(durable_broker, NODE), tmp_path / "edge.db", ack_timeout_s=30)
    asked: list[str] = []
    subscribe = publisher.client.subscribe

    def counting(topic: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(topic))
        return subscribe(topic, *args, **kwargs)

    publisher.client.subscribe = counting  # type: ignore[method-assign]
    try:
        ingest.start()
        assert ingest.wait_subscribed(10)
        publisher.start()
        assert publisher.wait_connected(10)
        ack_topic = T.node_ack(NODE)
        wait_until(lambda: ack_topic in asked and not publisher._subscribing, 5, "subscribed once")
        with publisher._subscriptions_lock:  # the broker's SUBACK for a re-subscription says 0x80
            publisher._subscribing[65000] = ack_topic
        publisher._on_subscribe(
            publisher.client, None, 65000, [ReasonCode(PacketTypes.SUBACK, identifier=0x80)], None
        )
        assert publisher._refused == {ack_topic}
        wait_until(
            lambda: asked.count(ack_topic) == 2 and not publisher._refused, 10, "asked for again, granted"
        )
        with outbox.transaction():
            outbox.enqueue(incident(uuid.uuid4(), 0), T.incident(NODE, "cam-01"))
        publisher.notify()
        wait_until(lambda: outbox.unacked()[0] == 0, 10, "the node hears the centre's ack")
    finally:
        publisher.stop(flush_timeout_s=1)
        ingest.stop()
        outbox.close()
