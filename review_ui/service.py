"""The composition root of the review server: database, ingest, reminder worker, web app.

Start order: database + migrations -> ingest (MQTT) -> reminder worker -> HTTP. Stop in reverse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
import uvicorn
from fastapi import FastAPI

from review_ui.auth import Accounts, LoginLimiter
from review_ui.cases import CaseAssigner
from review_ui.changes import ChangeNotifier
from review_ui.clock import Clock, SystemClock
from review_ui.config import ReviewConfig, read_secret
from review_ui.db import Store
from review_ui.evidence_links import EvidenceLinks
from review_ui.exports import VerdictExporter
from review_ui.i18n import Catalog
from review_ui.leases import Lease
from review_ui.migrations import migrate
from review_ui.proposals import Proposals
from review_ui.reminders.build import build_china_channels
from review_ui.reminders.channels import (
    Channel,
    EmailChannel,
    MqttChannel,
    UnavailableChannel,
    WebhookChannel,
)
from review_ui.reminders.dispatcher import Dispatcher, LoopChecker, Task, Worker
from review_ui.reminders.ladder import EscalationLadder
from review_ui.reminders.receipts import ReceiptPoller
from review_ui.reminders.sms_window import SmsSendWindow
from review_ui.review import Reviewer
from review_ui.shops import Shops
from review_ui.web.app import create_app
from review_ui.web.context import AppContext
from review_ui.zone_configs import ConfigPublisher, NoPublisher, UplinkConfigPublisher, ZoneConfigs
from uplink.ingest_service import IngestService
from uplink.mqtt import new_client
from uplink.review_db import open_review_database

log = logging.getLogger(__name__)


def open_store(config: ReviewConfig) -> Store:
    """The ingest's tables (its migrations), then ours, then our read indexes."""
    if config.database.dialect == "sqlite":
        config.database.path.parent.mkdir(parents=True, exist_ok=True)
    open_review_database(config.database).close()
    store = Store(config.database)
    with store.writer_unlocked() as db:
        migrate(db)
    return store


class ReviewServer:
    def __init__(self, config: ReviewConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        secret = config.secret_key_file.read_bytes().strip()
        if len(secret) < 16:
            raise ValueError(f"{config.secret_key_file}: the secret key must have at least 16 bytes")
        self.store = open_store(config)
        self.changes = ChangeNotifier()
        self.links = EvidenceLinks(secret, config.public_base_url, self.clock)
        self._mqtt_client: mqtt.Client | None = None
        channels: dict[str, Channel] = {
            "email": EmailChannel(
                config.smtp.host,
                config.smtp.port,
                config.smtp.sender,
                starttls=config.smtp.starttls,
                username=config.smtp.username,
                password=read_secret(config.smtp.password_file),
                timeout_s=config.smtp.timeout_s,
            ),
        }
        webhook_secret = read_secret(config.webhook.secret_file)
        channels["webhook"] = (
            WebhookChannel(webhook_secret.encode(), config.webhook.timeout_s)
            if webhook_secret
            else UnavailableChannel("webhook secret_file not configured")
        )
        publisher: ConfigPublisher = NoPublisher()
        self.ingest: IngestService | None = None
        if config.mqtt is not None:
            settings = config.mqtt
            self._mqtt_client = new_client(
                settings.model_copy(update={"client_id": settings.client_id[:54] + "-remind"})
            )
            channels["mqtt"] = MqttChannel(self._mqtt_client)
            publisher = UplinkConfigPublisher(settings)
            self.ingest = IngestService(
                settings,
                config.database,
                config.evidence_dir,
                on_change=self._ingested,
            )
        else:
            channels["mqtt"] = UnavailableChannel("MQTT is not configured")
        china = build_china_channels(config)  # sms, wecom, dingtalk, case_push
        channels.update(china.channels)
        self.dispatcher = Dispatcher(
            self.store,
            self.clock,
            channels,
            config.reminders,
            config.evidence_dir,
            self.links.url,
            timezone=config.timezone,
            windows={"sms": SmsSendWindow(config.sms, config.timezone)},
        )
        self.ladder = EscalationLadder(
            self.store,
            self.clock,
            config.escalation,
            config.robots,
            config.case_push.url,
            config.locale,
            announce_since=self.clock.now(),
        )
        tasks: list[Task] = [self.ladder]
        if china.sms is not None:
            sms = config.sms
            tasks.append(
                ReceiptPoller(self.store, self.clock, china.sms, sms.receipt_poll_s, sms.receipt_max_age_h)
            )
        self.zones = ZoneConfigs(self.store, self.clock, publisher)
        self.cases = CaseAssigner(self.store, config.cases.window_h)
        self.worker = Worker(
            self.dispatcher,
            LoopChecker(self.store, self.clock),
            config.reminders.poll_s,
            on_tick=self.zones.mark_applied,
            assigner=self.cases,
            tasks=tasks,
            lease=Lease(self.store, self.clock, "reminders", ttl_s=max(60.0, 10 * config.reminders.poll_s)),
        )
        self.accounts = Accounts(self.store, self.clock, config.session_ttl_h)
        self.context = AppContext(
            config=config,
            store=self.store,
            clock=self.clock,
            accounts=self.accounts,
            limiter=LoginLimiter(
                self.store,
                self.clock,
                config.login_max_failures,
                config.login_window_s,
                max_client_failures=config.login_max_failures_per_client,
            ),
            reviewer=Reviewer(
                self.store,
                self.clock,
                config.reminders.deadline_h,
                config.locale,
                undo_s=config.reminders.undo_s,
            ),
            shops=Shops(self.store, self.clock),
            dispatcher=self.dispatcher,
            zones=self.zones,
            catalog=Catalog(),
            secret=secret,
            exporter=VerdictExporter(self.store, self.clock, config.evidence_dir),
            links=self.links,
            changes=self.changes,
            proposals=Proposals(self.store, self.clock, self.zones),
            wake_worker=self._changed,
        )
        self.app: FastAPI = create_app(self.context)
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None

    def _ingested(self, _incident_id: object) -> None:
        # Into its case before the queues hear of it, so the pushed token already has the case;
        # the worker's tick assigns whatever this missed.
        try:
            self.cases.run_once()
        except Exception:
            log.exception("case assignment failed; the reminder worker retries")
        self.worker.wake()
        self.changes.notify()

    def _changed(self) -> None:
        """After a verdict or a re-queue: send reminders now, refresh every open queue."""
        self.worker.wake()
        self.changes.notify()

    def start_background(self) -> None:
        if self.ingest is not None:
            self.ingest.start()
        if self._mqtt_client is not None and self.config.mqtt is not None:
            self._mqtt_client.connect_async(
                self.config.mqtt.host, self.config.mqtt.port, self.config.mqtt.keepalive_s
            )
            self._mqtt_client.loop_start()
        self.worker.start()

    def stop_background(self) -> None:
        self.worker.stop()
        if self._mqtt_client is not None:
            self._mqtt_client.disconnect()
            self._mqtt_client.loop_stop()
        if self.ingest is not None:
            self.ingest.stop()
        self.store.close()

    def _uvicorn(self, **overrides: Any) -> uvicorn.Server:
        return _Server(
            self.changes,
            uvicorn.Config(
                self.app,
                host=self.config.bind,
                port=self.config.port,
                log_level="warning",
                access_log=False,
                # uvicorn trusts X-Forwarded-For from loopback by default: rotating it gave
                # unlimited login guesses. Only the configured proxies are believed.
                proxy_headers=bool(self.config.trusted_proxies),
                forwarded_allow_ips=",".join(self.config.trusted_proxies) or "",
                **overrides,
            ),
        )

    def serve_forever(self) -> None:
        """For the CLI: uvicorn owns the main thread and its signal handling."""
        self.start_background()
        try:
            self._uvicorn().run()
        finally:
            self.stop_background()

    @contextmanager
    def running(self) -> Iterator[ReviewServer]:
        """Everything started, HTTP on a thread (tests, benchmarks)."""
        self.start_background()
        self._http = self._uvicorn()
        self._http_thread = threading.Thread(target=self._http.run, name="review-http", daemon=True)
        self._http_thread.start()
        deadline = time.monotonic() + 10
        while not self._http.started and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            yield self
        finally:
            self.changes.close()
            self._http.should_exit = True
            self._http_thread.join(10)
            self.stop_background()


class _Server(uvicorn.Server):
    """Ends the open event streams first: uvicorn waits for running responses before it stops."""

    def __init__(self, changes: ChangeNotifier, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._changes = changes

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._changes.close()
        super().handle_exit(sig, frame)
