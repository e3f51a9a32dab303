"""The escalation ladder: reminder -> second reminder -> inspector group -> case push.

Each step after the first is a new row in the reminder outbox, queued here once its delay
after the first reminder's sending has passed while the sidewalk is still not clear; the
dispatcher then sends it like any reminder (same retries and backoff). A cleared incident
(rectified) stops the ladder. New incidents are announced to the inspectors' group too."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from review_ui import audit
from review_ui.clock import Clock, iso, parse_iso
from review_ui.db import Store
from review_ui.reminders.settings import EscalationSettings, RobotSettings
from uplink.database import Database

ANNOUNCE_MARGIN = timedelta(minutes=2)
INSPECTORS = "inspectors"  # the target shown for group posts; the robot's URL stays secret


class Step(enum.StrEnum):
    REMINDER = "reminder"
    SECOND_REMINDER = "second_reminder"
    INSPECTOR_GROUP = "inspector_group"
    CASE_PUSH = "case_push"
    NEW_INCIDENT = "new_incident"


class EscalationLadder:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: EscalationSettings,
        robots: RobotSettings,
        case_push_url: str | None,
        locale: str,
        announce_since: datetime,
    ) -> None:
        self.store = store
        self.clock = clock
        self.robots = robots
        self.case_push_url = case_push_url
        self.locale = locale  # inspectors read the server's language
        # Only incidents received from here on are announced: turning the robot on must not
        # post the whole history.
        self.announce_since = announce_since
        self.steps: list[tuple[Step, timedelta]] = [
            (step, timedelta(hours=hours))
            for step, hours in (
                (Step.SECOND_REMINDER, settings.second_reminder_after_h),
                (Step.INSPECTOR_GROUP, settings.inspector_group_after_h),
                (Step.CASE_PUSH, settings.case_push_after_h),
            )
            if hours is not None
        ]

    def run_once(self) -> int:
        """Queue every step now due; returns how many rows were queued."""
        queued = 0
        now = self.clock.now()
        with self.store.write() as db:
            if self.steps:
                queued += self._climb(db, now)
            if self.robots.inspector_channel is not None and self.robots.notify_new_incidents:
                queued += self._announce(db, now)
        return queued

    def _climb(self, db: Database, now: datetime) -> int:
        firsts = db.execute(
            "SELECT r.id, r.incident_id, r.shop_id, r.channel, r.target, r.locale, r.deadline_at, r.sent_at"
            " FROM reminders r JOIN workflow w ON w.incident_id = r.incident_id"
            " JOIN incidents i ON i.incident_id = r.incident_id"
            " WHERE r.step = 'reminder' AND r.status = 'sent' AND w.status IN ('reminded', 'escalated')"
            " AND i.state = 'open'"
        ).fetchall()
        queued = 0
        for first_id, incident_id, shop_id, channel, target, locale, deadline_at, sent_at in firsts:
            taken = {
                row[0]
                for row in db.execute("SELECT step FROM reminders WHERE incident_id = ?", [incident_id])
            }
            for step, delay in self.steps:
                if step.value in taken or parse_iso(sent_at) + delay > now:
                    continue
                if step is Step.SECOND_REMINDER:
                    route = (channel, target, locale)
                elif step is Step.INSPECTOR_GROUP:
                    route = (str(self.robots.inspector_channel), INSPECTORS, self.locale)
                else:
                    route = ("case_push", str(self.case_push_url), self.locale)
                reminder_id = _queue(db, now, incident_id, shop_id, route, deadline_at, step)
                audit.record(
                    db,
                    self.clock,
                    "system",
                    "reminder.escalated",
                    incident_id,
                    {"step": step.value, "reminder_id": reminder_id, "channel": route[0], "after": first_id},
                )
                queued += 1
        return queued

    def _announce(self, db: Database, now: datetime) -> int:
        # received_at is the ingest's clock, set before its commit: several ingest workers can
        # commit out of order, so the scan looks back a margin and skips what it announced.
        fresh = db.execute(
            "SELECT i.incident_id, i.shop_id, i.received_at FROM incidents i"
            " WHERE i.received_at >= ? AND i.state = 'open'"
            " AND NOT EXISTS (SELECT 1 FROM reminders r WHERE r.incident_id = i.incident_id"
            " AND r.step = 'new_incident') ORDER BY i.received_at",
            [iso(self.announce_since - ANNOUNCE_MARGIN)],
        ).fetchall()
        route = (str(self.robots.inspector_channel), INSPECTORS, self.locale)
        for incident_id, shop_id, received_at in fresh:
            _queue(db, now, incident_id, shop_id, route, "", Step.NEW_INCIDENT)
            self.announce_since = max(self.announce_since, parse_iso(received_at))
        return len(fresh)


def _queue(
    db: Database,
    now: datetime,
    incident_id: str,
    shop_id: str,
    route: tuple[str, str, str],
    deadline_at: str,
    step: Step,
) -> int:
    channel, target, locale = route
    cursor = db.execute(
        "INSERT INTO reminders (incident_id, shop_id, channel, target, locale, status, attempts,"
        " next_attempt_at, deadline_at, created_at, step)"
        " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?) RETURNING id",
        [incident_id, shop_id, channel, target, locale, iso(now), deadline_at, iso(now), step.value],
    )
    return int(cursor.fetchone()[0])
