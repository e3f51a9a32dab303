"""The ingest as a running service: a persistent MQTT session and one SQLite writer thread.

clean_session=False with a fixed client id: the broker queues QoS 1 messages while the ingest
is down and delivers them when it is back. manual_ack: a message is PUBACKed only after its
batch committed, so a crash between receipt and commit means redelivery, not loss. After the
commit each node also hears which of its events are stored (curbwatch.ack/1 on {node}/ack):
only then does the edge let them go, so a broker that crashes with events it PUBACKed but never
delivered loses nothing (the edge re-sends them).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import paho.mqtt.client as mqtt

from uplink.clock import Clock, utc_now
from uplink.database import DatabaseUrl, parse_url
from uplink.ingest import DEFAULT_MAX_PAYLOAD_BYTES, Ingest, IngestOutcome
from uplink.messages import MAX_ACKED_EVENTS, AckedEvent, StoredAck, to_json
from uplink.mqtt import ClientFactory, new_client
from uplink.review_db import open_review_database
from uplink.settings import MqttSettings
from uplink.sqlite import Synchronous
from uplink.topics import Topics

log = logging.getLogger(__name__)
SUBSCRIBE_RETRY_S = 2.0  # a refused subscription is asked for again after this


@dataclass(frozen=True)
class _Received:
    topic: str
    payload: bytes
    mid: int
    qos: int


class IngestService:
    def __init__(
        self,
        settings: MqttSettings,
        database: str | Path | DatabaseUrl,
        evidence_dir: str | Path,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        batch_max: int = 500,
        synchronous: Synchronous = "FULL",
        on_change: Callable[[UUID], None] | None = None,
        client_factory: ClientFactory = new_client,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.database = database if isinstance(database, DatabaseUrl) else parse_url(database)
        self.evidence_dir = Path(evidence_dir)
        self.topics = Topics(settings.prefix)
        self._max_payload_bytes = max_payload_bytes
        self._batch_max = batch_max
        self._synchronous: Synchronous = synchronous
        self._on_change = on_change
        self._clock = clock
        self.client = client_factory(settings, clean_session=False, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None
        self.stored_batches = 0
        self.acknowledged_events = 0

    def start(self) -> None:
        # Migrate here, not in the thread, so a broken database fails start() loudly.
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        open_review_database(self.database, synchronous=self._synchronous).close()
        self._thread = threading.Thread(target=self._write_loop, name="uplink-ingest-writer", daemon=True)
        self._thread.start()
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Commit and acknowledge what was received, then leave; the session stays on the broker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("ingest writer did not finish within %.1f s", timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("ingest: broker refused connection: %s", reason)
            return
        log.info("ingest: connected (session present: %s)", flags.session_present)
        self._connected.set()
        self._subscribe()

    def _subscribe(self) -> None:
        if self._stop.is_set() or not self._connected.is_set():
            return
        filters = self.topics.ingest_subscriptions(self.settings.shared_group)
        result, _mid = self.client.subscribe([(topic, 1) for topic in filters])
        if result != mqtt.MQTT_ERR_SUCCESS:
            log.error("ingest: subscribe failed: %s", result)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            # An ACL, or a clustered broker electing a leader (NATS answers 0x80 then): ask again
            # later, off the network thread, rather than stay deaf until the next reconnect.
            log.error("ingest: broker refused %d subscriptions (ACL?): %s; retrying", len(refused), refused)
            retry = threading.Timer(SUBSCRIBE_RETRY_S, self._subscribe)
            retry.daemon = True
            retry.start()
            return
        self._subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        log.warning("ingest: disconnected (%s)", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(_Received(message.topic, bytes(message.payload), message.mid, message.qos))

    # -- writer thread ------------------------------------------------------------------------

    def _write_loop(self) -> None:
        db = open_review_database(self.database, synchronous=self._synchronous)
        ingest = Ingest(
            db,
            self.evidence_dir,
            prefix=self.settings.prefix,
            max_payload_bytes=self._max_payload_bytes,
            clock=self._clock,
            on_change=self._on_change,
        )
        retry_s = 0.1
        batch: list[_Received] = []
        try:
            while True:
                if not batch:
                    batch = self._next_batch()
                    if not batch:
                        if self._stop.is_set():
                            return
                        continue
                try:
                    outcomes = ingest.handle_batch([(item.topic, item.payload) for item in batch])
                except Exception:
                    # The database failed (disk, lock timeout): keep the batch unacknowledged, retry.
                    log.exception(
                        "ingest: storing a batch of %d failed; retrying in %.1f s", len(batch), retry_s
                    )
                    if self._stop.wait(retry_s):
                        return
                    retry_s = min(retry_s * 2, 5.0)
                    continue
                retry_s = 0.1
                for item in batch:
                    if item.qos > 0:
                        self.client.ack(item.mid, item.qos)
                self._acknowledge_stored(outcomes)
                self.stored_batches += 1
                batch = []
        finally:
            db.close()

    def _acknowledge_stored(self, outcomes: list[IngestOutcome]) -> None:
        """End-to-end acknowledgement: tell each node which of its events are now committed
        (duplicates too: the node re-sent because it had not heard). QoS 1, batched per node."""
        by_node: dict[str, list[AckedEvent]] = {}
        for outcome in outcomes:
            if outcome.stored_event and outcome.node_id is not None:
                assert outcome.incident_id is not None and outcome.seq is not None
                by_node.setdefault(outcome.node_id, []).append(
                    AckedEvent(incident_id=outcome.incident_id, seq=outcome.seq)
                )
        for node_id, events in by_node.items():
            for start in range(0, len(events), MAX_ACKED_EVENTS):
                ack = StoredAck(node_id=node_id, events=events[start : start + MAX_ACKED_EVENTS])
                self.client.publish(self.topics.node_ack(node_id), to_json(ack), qos=1)
        self.acknowledged_events += sum(len(events) for events in by_node.values())

    def _next_batch(self) -> list[_Received]:
        try:
            batch = [self._inbox.get(timeout=0.1)]
        except queue.Empty:
            return []
        while len(batch) < self._batch_max:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch
