"""Drains the outbox to the broker: QoS 1, in order, a bounded in-flight window, sent = PUBACK.

Threads: paho's network thread (loop_start) only records events (connected, PUBACKed mids,
config messages); one drain thread owns its own Outbox connection and does all SQLite work.
A row is marked sent only after on_publish reported the PUBACK for the mid it went out with.
While disconnected, paho keeps the unacknowledged messages (at most `window`) and resends them
with DUP set after reconnecting; after a process crash the new publisher resends every unsent
row. Either way delivery is at-least-once and the ingest deduplicates on (incident_id, seq).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from uplink.clock import Clock, parse_utc, utc_now
from uplink.messages import (
    MAX_HEALTH_CAMERAS,
    MAX_HEALTH_PROBLEMS,
    CameraHealth,
    CameraStatus,
    ConfigHealth,
    ConfigMessage,
    NodeHealth,
    NodeState,
    RuntimeHealth,
    StoredAck,
    ZonesReport,
    to_json,
)
from uplink.mqtt import ClientFactory, new_client
from uplink.outbox import Outbox
from uplink.settings import MqttSettings
from uplink.sqlite import open_database
from uplink.topics import Topics, check_id

log = logging.getLogger(__name__)

# End-to-end acknowledgement (docs/mqtt.md): a PUBACKed event the centre has not acknowledged
# storing within this long is sent again. Long enough for a busy ingest, short enough that a
# broker crash costs minutes, not the event.
DEFAULT_ACK_TIMEOUT_S = 120.0
RESEND_CHECK_S = 5.0
MAX_ACK_BYTES = 256 * 1024
SUBSCRIBE_RETRY_S = 2.0  # a refused subscription is asked for again after this


@dataclass(frozen=True)
class HealthProbe:
    """What the edge adds to each health message (the publisher knows uptime and backlog)."""

    config_version: int | None = None
    software_version: str | None = None
    cameras: tuple[CameraHealth, ...] = ()
    config: ConfigHealth | None = None
    runtime: RuntimeHealth | None = None


# (version if the payload had a readable one, problems as `source: key: message`)
ConfigRejectedCallback = Callable[[int | None, Sequence[str]], None]


@dataclass(frozen=True)
class PublisherStats:
    published: int
    acknowledged: int
    in_flight: int
    backlog: int
    connected: bool


class Publisher:
    def __init__(
        self,
        settings: MqttSettings,
        outbox_path: str | Path,
        *,
        window: int = 20,
        poll_interval_s: float = 0.1,
        health_interval_s: float = 30.0,
        prune_interval_s: float = 3600.0,
        health_probe: Callable[[], HealthProbe] = HealthProbe,
        on_config: Callable[[ConfigMessage], None] | None = None,
        on_config_rejected: ConfigRejectedCallback | None = None,
        ack_timeout_s: float | None = DEFAULT_ACK_TIMEOUT_S,
        resend_check_s: float = RESEND_CHECK_S,
        client_factory: ClientFactory = new_client,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        open_outbox: Callable[[Path], Outbox] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.settings = settings
        self.node_id = check_id(settings.client_id, "node (the MQTT client id)")
        self.topics = Topics(settings.prefix)
        self._outbox_path = Path(outbox_path)
        # NORMAL on the publisher's own connection: a mark_sent lost to a power cut only means a
        # resend (the ingest deduplicates), and an fsync per PUBACK batch would cap throughput.
        # The edge's connection, which commits the events themselves, stays FULL.
        self._open_outbox = open_outbox or (
            lambda path: Outbox(open_database(path, synchronous="NORMAL"), clock=clock)
        )
        self._window = window
        self._poll_s = poll_interval_s
        self._health_interval_s = health_interval_s
        self._prune_interval_s = prune_interval_s
        self._health_probe = health_probe
        self._on_config = on_config
        self._on_config_rejected = on_config_rejected
        # None: the PUBACK is all this node waits for (a centre without end-to-end acks).
        self._ack_timeout = None if not ack_timeout_s else timedelta(seconds=ack_timeout_s)
        self._stored_acks: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._resend_check_s = resend_check_s
        self._clock = clock
        self._monotonic = monotonic
        self.client = client_factory(settings, clean_session=True)
        self.client.max_inflight_messages_set(window + 8)  # room for status/health beside the window
        self.client.will_set(
            self.topics.node_status(self.node_id), NodeState.OFFLINE.value, qos=1, retain=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        # A refused SUBSCRIBE (a clustered broker mid-election answers 0x80) would leave the node
        # deaf to acks and configs until its next reconnect: the drain thread retries it.
        self._subscribing: dict[int, str] = {}
        self._refused: set[str] = set()
        self._subscriptions_lock = threading.Lock()
        self._retry_subscribe_at = 0.0
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._latest: dict[str, bytes] = {}
        self._latest_lock = threading.Lock()
        self._stop_deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._in_flight: dict[int, int] = {}  # mid -> outbox position; drain thread only
        self._acked: list[int] = []  # PUBACKed positions not yet marked in the outbox
        self._mark_interval_s = 0.05
        self._published = 0
        self._acknowledged = 0
        self._stored = 0  # rows the centre acknowledged storing
        self._backlog = 0
        self._started_at = monotonic()
        self._next_health = 0.0
        # Config messages are untrusted: paho's network thread only hands the newest payload to
        # this slot; the config thread parses it and calls on_config / on_config_rejected.
        self._config_slot: bytes | None = None
        self._config_ready = threading.Condition()
        self._config_stop = False
        self._config_thread: threading.Thread | None = None

    # -- public API ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._on_config is not None:
            self._config_thread = threading.Thread(
                target=self._config_loop, name=f"uplink-config-{self.node_id}", daemon=True
            )
            self._config_thread.start()
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._drain, name=f"uplink-drain-{self.node_id}", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Tell the drain thread that rows were committed (it also polls every poll_interval_s)."""
        self._wake.set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish_latest(self, topic: str, payload: bytes) -> None:
        """Retained latest-value state (camera status, snapshot): only the newest per topic is
        kept while offline, so an outage never fills the outbox with superseded pictures."""
        with self._latest_lock:
            self._latest[topic] = payload
        self._wake.set()

    def publish_camera_status(self, status: CameraStatus) -> None:
        self.publish_latest(self.topics.camera_status(self.node_id, status.camera_id), to_json(status))

    def publish_snapshot(self, camera_id: str, jpeg: bytes) -> None:
        self.publish_latest(self.topics.snapshot(self.node_id, camera_id), jpeg)

    def publish_zones(self, report: ZonesReport) -> None:
        """The zone document a camera runs now (retained; only the newest while offline)."""
        self.publish_latest(self.topics.camera_zones(self.node_id, report.camera_id), to_json(report))

    def stats(self) -> PublisherStats:
        return PublisherStats(
            self._published, self._acknowledged, len(self._in_flight), self._backlog, self._connected.is_set()
        )

    def stop(self, flush_timeout_s: float = 5.0) -> int:
        """Drain until the outbox is empty or the timeout passes; publish `offline`; disconnect.
        Returns the number of events still unsent (they stay in the outbox for the next run)."""
        self._stop_deadline = self._monotonic() + flush_timeout_s
        self._wake.set()
        if self._thread is not None:
            self._thread.join(flush_timeout_s + 10.0)
        if self._connected.is_set():
            info = self.client.publish(
                self.topics.node_status(self.node_id), NodeState.OFFLINE.value, qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=2.0)
            except RuntimeError:
                log.warning("node %s: offline status not acknowledged before disconnect", self.node_id)
        self.client.disconnect()
        self.client.loop_stop()
        with self._config_ready:
            self._config_stop = True
            self._config_ready.notify_all()
        if self._config_thread is not None:
            self._config_thread.join(5.0)
        return self._backlog

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("node %s: broker refused connection: %s", self.node_id, reason)
            return
        log.info("node %s: connected to %s:%d", self.node_id, self.settings.host, self.settings.port)
        client.publish(self.topics.node_status(self.node_id), NodeState.ONLINE.value, qos=1, retain=True)
        with self._subscriptions_lock:
            self._refused.clear()
            self._subscribing.clear()
        for topic in self._own_subscriptions():
            self._subscribe(topic)
        self._connected.set()
        self._next_health = 0.0
        self._wake.set()

    def _own_subscriptions(self) -> list[str]:
        topics = []
        if self._on_config is not None:
            topics.append(self.topics.node_config(self.node_id))
        if self._ack_timeout is not None:
            topics.append(self.topics.node_ack(self.node_id))
        return topics

    def _subscribe(self, topic: str) -> None:
        # Under the lock: the SUBACK callback must find the mid recorded.
        with self._subscriptions_lock:
            result, mid = self.client.subscribe(topic, qos=1)
            if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
                self._subscribing[mid] = topic
            else:
                self._refused.add(topic)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, reasons: list[Any], _p: Any) -> None:
        with self._subscriptions_lock:
            topic = self._subscribing.pop(mid, None)
            if topic is None:
                return
            if any(reason.is_failure for reason in reasons):
                self._refused.add(topic)
                self._retry_subscribe_at = self._monotonic() + SUBSCRIBE_RETRY_S
            else:
                self._refused.discard(topic)
        if topic in self._refused:
            log.warning("node %s: broker refused the subscription to %s; retrying", self.node_id, topic)

    def _retry_refused_subscriptions(self) -> None:
        """Drain thread, while connected."""
        with self._subscriptions_lock:
            due = self._monotonic() >= self._retry_subscribe_at
            topics = sorted(self._refused) if due else []
            self._refused.difference_update(topics)
            if topics:
                self._retry_subscribe_at = self._monotonic() + SUBSCRIBE_RETRY_S
        for topic in topics:
            self._subscribe(topic)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        log.warning("node %s: disconnected (%s); unacknowledged events will be resent", self.node_id, reason)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        self._acks.put(mid)
        self._wake.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        """Network thread: hand the payload over and return (acks to the drain thread; configs
        to the config thread, a newer one replacing a waiting one)."""
        if message.topic == self.topics.node_ack(self.node_id):
            if len(message.payload) <= MAX_ACK_BYTES:
                self._stored_acks.put(bytes(message.payload))
                self._wake.set()
            return
        if self._on_config is None or not message.payload:
            return  # an empty retained payload means the review server cleared the config
        with self._config_ready:
            self._config_slot = bytes(message.payload)
            self._config_ready.notify()

    # -- config thread ------------------------------------------------------------------------

    def _config_loop(self) -> None:
        while True:
            with self._config_ready:
                while self._config_slot is None and not self._config_stop:
                    self._config_ready.wait()
                if self._config_stop:
                    return
                payload, self._config_slot = self._config_slot, None
            if payload is None:
                continue
            try:
                self._handle_config(payload)
            except Exception:  # RecursionError, MemoryError...: the thread must outlive any payload
                log.exception(
                    "node %s: config message of %d bytes could not be handled", self.node_id, len(payload)
                )
                self._config_rejected(_version_of(payload), ["config message: could not be read"])

    def _handle_config(self, payload: bytes) -> None:
        try:
            config = ConfigMessage.model_validate_json(payload)
        except ValidationError as exc:
            version = _version_of(payload)
            source = "config message" if version is None else f"config v{version}"
            problems = [
                f"{source}: {'.'.join(str(part) for part in error['loc']) or '(message)'}: {error['msg']}"
                for error in exc.errors()[:MAX_HEALTH_PROBLEMS]
            ]
            self._config_rejected(version, problems)
            return
        if config.node_id != self.node_id:
            problem = f"config v{config.version}: node_id: is '{config.node_id}', expected '{self.node_id}'"
            self._config_rejected(config.version, [problem])
            return
        if self._on_config is None:
            return
        try:
            self._on_config(config)
        except Exception:
            log.exception("node %s: on_config failed for config version %d", self.node_id, config.version)

    def _config_rejected(self, version: int | None, problems: list[str]) -> None:
        """A config the node cannot even read goes to the same rejection report as bad zones
        (the callback's owner logs it, so it is logged here only when nobody listens)."""
        if self._on_config_rejected is None:
            log.error("node %s: rejected config: %s", self.node_id, "; ".join(problems))
            return
        try:
            self._on_config_rejected(version, problems)
        except Exception:
            log.exception("node %s: on_config_rejected failed", self.node_id)

    # -- drain thread -------------------------------------------------------------------------

    def _drain(self) -> None:
        outbox = self._open_outbox(self._outbox_path)
        cursor = 0  # highest position handed to paho in this process
        self._next_health = 0.0
        next_prune = next_backlog = next_mark = next_resend = self._monotonic()
        try:
            while True:
                self._wake.wait(self._poll_s)
                self._wake.clear()
                self._settle_acks()
                now = self._monotonic()
                if len(self._acked) >= 500 or now >= next_mark or self._stop_deadline is not None:
                    self._mark_sent(outbox)
                    next_mark = now + self._mark_interval_s
                self._settle_stored(outbox)
                if self._ack_timeout is not None and self._monotonic() >= next_resend:
                    if outbox.resend_unacked(self._ack_timeout):
                        cursor = 0  # the re-opened rows lie behind the cursor
                    next_resend = self._monotonic() + self._resend_check_s
                if self._connected.is_set():
                    self._retry_refused_subscriptions()
                    self._send_latest()
                    cursor = self._fill_window(outbox, cursor)
                    self._maybe_health(outbox)
                if self._monotonic() >= next_backlog or self._stop_deadline is not None:
                    self._backlog = outbox.backlog()  # a count over the unsent index: not per PUBACK
                    next_backlog = self._monotonic() + 1.0
                if self._monotonic() >= next_prune:
                    pruned = outbox.prune()
                    log.debug("node %s: pruned %d sent outbox rows", self.node_id, pruned)
                    next_prune = self._monotonic() + self._prune_interval_s
                if self._stop_deadline is not None and (
                    (self._backlog == 0 and not self._in_flight) or self._monotonic() >= self._stop_deadline
                ):
                    return
        except Exception:
            log.exception("node %s: drain thread failed; events stay in the outbox", self.node_id)
        finally:
            try:
                self._settle_acks()
                self._mark_sent(outbox)
            finally:
                outbox.close()

    def _settle_acks(self) -> None:
        """PUBACKed mids leave the window at once; their rows are marked in batches (_mark_sent)."""
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                return
            position = self._in_flight.pop(mid, None)
            if position is not None:  # None: status/health/latest, or not ours
                self._acked.append(position)

    def _settle_stored(self, outbox: Outbox) -> None:
        """The centre's acknowledgements: parsed here (not on the network thread), rows let go."""
        events: list[tuple[str, int]] = []
        while True:
            try:
                payload = self._stored_acks.get_nowait()
            except queue.Empty:
                break
            try:
                ack = StoredAck.model_validate_json(payload)
            except (ValidationError, ValueError, RecursionError) as exc:
                log.warning("node %s: unreadable ack ignored: %s", self.node_id, str(exc)[:200])
                continue
            if ack.node_id != self.node_id:
                log.warning("node %s: ack for node %s ignored", self.node_id, ack.node_id)
                continue
            events.extend((str(event.incident_id), event.seq) for event in ack.events)
        if events:
            self._stored += outbox.mark_acked(events)

    def _mark_sent(self, outbox: Outbox) -> None:
        # One write transaction per batch, not per PUBACK: each one contends for the write lock
        # with the edge's enqueue. Unmarked acked rows are only resent after a crash (deduplicated).
        if self._acked:
            outbox.mark_sent(self._acked, acknowledged=self._ack_timeout is None)
            self._acknowledged += len(self._acked)
            self._acked = []

    def _fill_window(self, outbox: Outbox, cursor: int) -> int:
        free = self._window - len(self._in_flight)
        if free <= 0:
            return cursor
        flying = set(self._in_flight.values())
        for row in outbox.pending(limit=free, after=cursor):
            cursor = row.position
            if row.position in flying:  # re-opened while its PUBACK is still due: once is enough
                continue
            info = self.client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
            # NO_CONN still queues a QoS 1 message inside paho; anything else did not queue it.
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning(
                    "node %s: publish of outbox row %d failed: %s", self.node_id, row.position, info.rc
                )
                break
            if row.qos == 0:
                self._acks.put(info.mid)  # nothing will acknowledge it; handing it over is all
            self._in_flight[info.mid] = row.position
            self._published += 1
        return cursor

    def _send_latest(self) -> None:
        with self._latest_lock:
            latest, self._latest = self._latest, {}
        for topic, payload in latest.items():
            self.client.publish(topic, payload, qos=1, retain=True)

    def _maybe_health(self, outbox: Outbox) -> None:
        now = self._monotonic()
        if now < self._next_health:
            return
        self._next_health = now + self._health_interval_s
        try:  # health is a report: a fault in it must never stop the drain of events
            health = self._health(outbox, now)
        except Exception:
            log.exception("node %s: health report failed; trying again next interval", self.node_id)
            return
        self.client.publish(self.topics.node_health(self.node_id), to_json(health), qos=0, retain=True)

    def _health(self, outbox: Outbox, now: float) -> NodeHealth:
        probe = self._health_probe()
        config_version = probe.config.applied_version if probe.config is not None else probe.config_version
        unacked, oldest = outbox.unacked()
        oldest_s = None if oldest is None else max(0.0, (self._clock() - parse_utc(oldest)).total_seconds())
        return NodeHealth(
            node_id=self.node_id,
            at=self._clock(),
            uptime_s=max(0.0, now - self._started_at),
            outbox_backlog=outbox.backlog(),
            config_version=config_version,
            software_version=probe.software_version,
            cameras=list(probe.cameras[:MAX_HEALTH_CAMERAS]) or None,
            config=probe.config,
            outbox_unacked=unacked,
            oldest_unacked_s=None if oldest_s is None else round(oldest_s, 1),
            runtime=probe.runtime,
        )


def _version_of(payload: bytes | bytearray) -> int | None:
    """The `version` of a config message that failed validation, when it has a usable one."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):  # also UnicodeDecodeError; deep nesting
        return None
    version = document.get("version") if isinstance(document, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) and version >= 1 else None
