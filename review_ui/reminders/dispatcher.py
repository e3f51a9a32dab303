"""The reminder outbox worker: sends due reminders, retries with exponential backoff."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from review_ui import audit
from review_ui.cases import CaseAssigner
from review_ui.clock import Clock, iso
from review_ui.config import ReminderSettings
from review_ui.db import Store
from review_ui.files import stored_file
from review_ui.leases import Lease
from review_ui.reminders.channels import Channel, DeliveryError, UnavailableChannel
from review_ui.reminders.message import ReminderContent
from review_ui.reminders.sms_window import SmsSendWindow
from uplink.database import Database

log = logging.getLogger(__name__)
BATCH = 20
SHOP_STEPS = ("reminder", "second_reminder")  # the steps that speak to the shop itself


class Task(Protocol):
    def run_once(self) -> int: ...


class Dispatcher:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        channels: Mapping[str, Channel],
        settings: ReminderSettings,
        evidence_dir: Path,
        evidence_url: Callable[[str], str],
        timezone: str = "Asia/Shanghai",
        windows: Mapping[str, SmsSendWindow] | None = None,
    ) -> None:
        self.timezone = timezone
        self.windows = dict(windows or {})  # channel -> when its messages may leave (sms)
        self.store = store
        self.clock = clock
        self.channels = dict(channels)
        self.settings = settings
        self.evidence_dir = evidence_dir.resolve()
        self.evidence_url = evidence_url  # incident id -> signed, expiring link
        # Renews the worker's lease before each send; False: another process took over.
        self.keep_leading: Callable[[], bool] = lambda: True

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.settings.backoff_base_s * (2 ** max(0, attempts - 1))
        return timedelta(seconds=min(seconds, self.settings.backoff_max_s))

    def due(self) -> list[dict[str, object]]:
        return list(
            self.store.read().query(
                "SELECT r.id, r.incident_id, r.shop_id, r.channel, r.target, r.locale, r.attempts,"
                " r.deadline_at, r.step,"
                " i.label, i.camera_id, i.zone_id, i.opened_at, i.evidence_path, i.shop_name,"
                " s.name AS registry_name, s.operator, s.address"
                " FROM reminders r JOIN incidents i ON i.incident_id = r.incident_id"
                " LEFT JOIN shops s ON s.id = r.shop_id"
                " WHERE r.status = 'pending' AND r.next_attempt_at <= ? ORDER BY r.next_attempt_at LIMIT ?",
                [iso(self.clock.now()), BATCH],
            )
        )

    def content(self, row: Mapping[str, object]) -> ReminderContent:
        path = row["evidence_path"]
        evidence = stored_file(self.evidence_dir, None if path is None else str(path))
        return ReminderContent(
            reminder_id=int(str(row["id"])),
            incident_id=str(row["incident_id"]),
            shop_id=str(row["shop_id"]),
            shop_name=str(row["registry_name"] or row["shop_name"] or row["shop_id"]),
            operator=str(row["operator"] or ""),
            locale=str(row["locale"]),
            label=str(row["label"]),
            camera_id=str(row["camera_id"]),
            zone_id=str(row["zone_id"]),
            opened_at=str(row["opened_at"]),
            deadline_at=str(row["deadline_at"]),
            evidence_url=self.evidence_url(str(row["incident_id"])),
            evidence_file=evidence,
            timezone=self.timezone,
            address=str(row["address"] or ""),
            step=str(row["step"]),
        )

    def run_once(self) -> int:
        """Try every due reminder once; returns how many were sent."""
        sent = 0
        for row in self.due():
            if not self.keep_leading():
                break
            if self._held(row):
                continue
            channel = self.channels.get(
                str(row["channel"]), UnavailableChannel(f"channel {row['channel']} off")
            )
            try:
                provider_ref = channel.send(str(row["target"]), self.content(row))
            except DeliveryError as exc:
                self._failed(row, str(exc))
            except Exception as exc:  # a bug in a channel must not stop the outbox
                log.exception("reminder %s: unexpected error", row["id"])
                self._failed(row, f"{type(exc).__name__}: {exc}")
            else:
                self._sent(row, provider_ref)
                sent += 1
        return sent

    def _held(self, row: Mapping[str, object]) -> bool:
        """Quiet hours or the shop's rate limit: the row waits, no attempt is counted."""
        window = self.windows.get(str(row["channel"]))
        if window is None:
            return False
        now = self.clock.now()
        with self.store.write() as db:
            hold = window.hold_until(db, str(row["shop_id"]), now)
            if hold is None:
                return False
            until, why = hold
            db.execute("UPDATE reminders SET next_attempt_at = ? WHERE id = ?", [iso(until), row["id"]])
            audit.record(
                db,
                self.clock,
                "system",
                "reminder.deferred",
                str(row["incident_id"]),
                {"reminder_id": row["id"], "why": why, "until": iso(until)},
            )
        log.info("reminder %s held until %s (%s)", row["id"], iso(until), why)
        return True

    def _sent(self, row: Mapping[str, object], provider_ref: str | None) -> None:
        now = iso(self.clock.now())
        with self.store.write() as db:
            db.execute(
                "UPDATE reminders SET status = 'sent', attempts = attempts + 1, sent_at = ?,"
                " last_error = NULL, provider_ref = ? WHERE id = ?",
                [now, provider_ref, row["id"]],
            )
            if row["step"] not in SHOP_STEPS:
                self._record_sent(db, row, provider_ref)
                return
            # The reminder speaks for its whole case: every confirmed occurrence is reminded.
            db.execute(
                "UPDATE workflow SET status = 'reminded', updated_at = ?"
                " WHERE status = 'confirmed' AND (incident_id = ? OR incident_id IN"
                " (SELECT ci.incident_id FROM case_incidents ci JOIN case_incidents mine"
                " ON mine.case_id = ci.case_id WHERE mine.incident_id = ?))",
                [now, row["incident_id"], row["incident_id"]],
            )
            self._record_sent(db, row, provider_ref)

    def _record_sent(self, db: Database, row: Mapping[str, object], provider_ref: str | None) -> None:
        detail = {"reminder_id": row["id"], "channel": row["channel"], "step": row["step"]}
        if provider_ref is not None:
            detail["provider_ref"] = provider_ref
        audit.record(db, self.clock, "system", "reminder.sent", str(row["incident_id"]), detail)
        if row["step"] == "case_push":
            audit.record(
                db,
                self.clock,
                "system",
                "reminder.case_opened",
                str(row["incident_id"]),
                {"reminder_id": row["id"], "case_number": provider_ref},
            )
        log.info("reminder %s (%s) sent via %s", row["id"], row["step"], row["channel"])

    def _failed(self, row: Mapping[str, object], error: str) -> None:
        attempts = int(str(row["attempts"])) + 1
        now = self.clock.now()
        final = attempts >= self.settings.max_attempts
        with self.store.write() as db:
            db.execute(
                "UPDATE reminders SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?"
                " WHERE id = ?",
                [
                    "failed" if final else "pending",
                    attempts,
                    error[:500],
                    iso(now + self.backoff(attempts)),
                    row["id"],
                ],
            )
            audit.record(
                db,
                self.clock,
                "system",
                "reminder.failed" if final else "reminder.retry",
                str(row["incident_id"]),
                {"reminder_id": row["id"], "attempts": attempts, "error": error},
            )
        log.warning("reminder %s attempt %d failed: %s", row["id"], attempts, error)

    def retry(self, reminder_id: int, by: str, ip: str = "") -> bool:
        """An admin re-queues a failed reminder."""
        with self.store.write() as db:
            cursor = db.execute(
                "UPDATE reminders SET status = 'pending', attempts = 0, next_attempt_at = ?"
                " WHERE id = ? AND status = 'failed'",
                [iso(self.clock.now()), reminder_id],
            )
            if cursor.rowcount:
                audit.record(db, self.clock, by, "reminder.requeue", str(reminder_id), {}, ip)
            return cursor.rowcount > 0


class LoopChecker:
    """Closes the loop: cleared after a reminder -> rectified; still open at the deadline -> escalated."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def run_once(self) -> int:
        now = iso(self.clock.now())
        moved = 0
        with self.store.write() as db:
            rectified = db.execute(
                "SELECT w.incident_id, i.cleared_at FROM workflow w"
                " JOIN incidents i ON i.incident_id = w.incident_id"
                " WHERE w.status = 'reminded' AND i.state = 'cleared'"
            ).fetchall()
            for incident_id, cleared_at in rectified:
                db.execute(
                    "UPDATE workflow SET status = 'rectified', updated_at = ? WHERE incident_id = ?",
                    [now, incident_id],
                )
                audit.record(
                    db, self.clock, "system", "workflow.rectified", incident_id, {"cleared_at": cleared_at}
                )
            escalated = db.execute(
                "SELECT w.incident_id, w.deadline_at FROM workflow w"
                " JOIN incidents i ON i.incident_id = w.incident_id"
                " WHERE w.status IN ('confirmed', 'reminded') AND i.state = 'open' AND w.deadline_at <= ?",
                [now],
            ).fetchall()
            for incident_id, deadline_at in escalated:
                db.execute(
                    "UPDATE workflow SET status = 'escalated', updated_at = ? WHERE incident_id = ?",
                    [now, incident_id],
                )
                audit.record(
                    db, self.clock, "system", "workflow.escalated", incident_id, {"deadline_at": deadline_at}
                )
            moved = len(rectified) + len(escalated)
        return moved


class Worker:
    """Runs the dispatcher and the loop checker every `poll_s`, or at once when woken."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        checker: LoopChecker,
        poll_s: float,
        on_tick: Callable[[], None] | None = None,
        assigner: CaseAssigner | None = None,
        tasks: Sequence[Task] = (),
        lease: Lease | None = None,
    ) -> None:
        self.lease = lease  # several review processes on one database: only its holder ticks
        if lease is not None:
            dispatcher.keep_leading = lease.hold
        self.assigner = assigner
        self.tasks = tuple(tasks)  # the escalation ladder, SMS receipts: after the outbox, each tick
        self.dispatcher = dispatcher
        self.checker = checker
        self.on_tick = on_tick
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="review-reminders", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self.lease is not None and not self.lease.hold():
                    self._wake.wait(self.poll_s)  # another process does the work
                    continue
                if self.assigner is not None:
                    self.assigner.run_once()
                self.dispatcher.run_once()
                self.checker.run_once()
                for task in self.tasks:
                    task.run_once()
                if self.on_tick is not None:
                    self.on_tick()
            except Exception:
                log.exception("reminder worker tick failed")
            self._wake.wait(self.poll_s)
        if self.lease is not None:
            try:
                self.lease.release()
            except Exception:
                log.exception("could not release the %s lease", self.lease.name)
