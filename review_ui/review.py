"""Write side of the review: verdicts, the workflow state, and the reminder outbox.

    pending -> confirmed -> reminded -> rectified | escalated
    pending -> rejected
A confirmed verdict creates the reminder row in the same transaction as the verdict, so a
crash cannot leave a confirmed incident without its reminder (the dispatcher sends it later).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from review_ui import audit
from review_ui.clock import Clock, iso
from review_ui.db import Store


class Verdict(enum.StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class RejectReason(enum.StrEnum):
    WRONG_OBJECT = "wrong_object"
    PERMITTED = "permitted"
    NOT_ON_SIDEWALK = "not_on_sidewalk"
    DETECTOR_ERROR = "detector_error"
    OTHER = "other"


class ReviewError(Exception):
    """A verdict that cannot be given (unknown incident, already decided, missing reason)."""

    def __init__(self, message: str, status_code: int = 409) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class VerdictResult:
    incident_id: str
    status: str
    reminder_ids: list[int]


MAX_NOTE = 2000


class Reviewer:
    def __init__(self, store: Store, clock: Clock, deadline_h: float, default_locale: str) -> None:
        self.store = store
        self.clock = clock
        self.deadline = timedelta(hours=deadline_h)
        self.default_locale = default_locale

    def give_verdict(
        self,
        incident_id: str,
        verdict: Verdict,
        reason: RejectReason | None,
        note: str,
        user: str,
        ip: str = "",
    ) -> VerdictResult:
        if verdict is Verdict.REJECTED and reason is None:
            raise ReviewError("a rejection needs a reason", 422)
        if len(note) > MAX_NOTE:
            raise ReviewError(f"note longer than {MAX_NOTE} characters", 422)
        now = self.clock.now()
        reminder_ids: list[int] = []
        with self.store.write() as db:
            row = db.execute(
                "SELECT i.shop_id, w.status, COALESCE(i.opened_at, i.first_seen_at)"
                " FROM incidents i LEFT JOIN workflow w"
                " ON w.incident_id = i.incident_id WHERE i.incident_id = ?",
                [incident_id],
            ).fetchone()
            if row is None:
                raise ReviewError("no such incident", 404)
            shop_id, status, opened_at = row
            if status not in (None, "pending"):
                raise ReviewError(f"incident already {status}")
            db.execute(
                "INSERT INTO verdicts (incident_id, verdict, reason, note, user, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [incident_id, verdict.value, reason.value if reason else None, note, user, iso(now)],
            )
            deadline = iso(now + self.deadline) if verdict is Verdict.CONFIRMED else None
            db.execute(
                "INSERT INTO workflow (incident_id, status, updated_at, deadline_at, opened_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(incident_id) DO UPDATE SET status = excluded.status,"
                " updated_at = excluded.updated_at, deadline_at = excluded.deadline_at",
                [incident_id, verdict.value, iso(now), deadline, opened_at],
            )
            audit.record(
                db,
                self.clock,
                user,
                f"verdict.{verdict.value}",
                incident_id,
                {"reason": reason.value if reason else None, "note": note},
                ip,
            )
            if verdict is Verdict.CONFIRMED:
                shop = db.execute(
                    "SELECT channel, target, locale FROM shops WHERE id = ?", [shop_id]
                ).fetchone()
                if shop is None:
                    audit.record(
                        db,
                        self.clock,
                        "system",
                        "reminder.skipped",
                        incident_id,
                        {"shop_id": shop_id, "why": "shop not in the registry"},
                    )
                else:
                    cursor = db.execute(
                        "INSERT INTO reminders (incident_id, shop_id, channel, target, locale, status,"
                        " attempts, next_attempt_at, deadline_at, created_at)"
                        " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                        [
                            incident_id,
                            shop_id,
                            shop[0],
                            shop[1],
                            shop[2] or self.default_locale,
                            iso(now),
                            deadline,
                            iso(now),
                        ],
                    )
                    reminder_id = int(cursor.lastrowid or 0)
                    reminder_ids.append(reminder_id)
                    audit.record(
                        db,
                        self.clock,
                        user,
                        "reminder.queued",
                        incident_id,
                        {"reminder_id": reminder_id, "channel": shop[0], "shop_id": shop_id},
                    )
        return VerdictResult(incident_id, verdict.value, reminder_ids)
