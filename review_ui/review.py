"""Write side of the review: verdicts, the workflow state, and the reminder outbox.

    pending -> confirmed -> reminded -> rectified | escalated
    pending -> confirmed -> rectified          (already cleared: closed as self-rectified)
    pending -> rejected
A verdict decides every undecided occurrence of the incident's case (review_ui.cases) and a
confirmed case gets one reminder, created in the same transaction as the verdicts, so a crash
cannot leave a confirmed incident without its reminder (the dispatcher sends it later). The
reminder waits `undo_s` first: until then `undo` takes the whole decision back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from review_ui import audit, cases, proposals
from review_ui.clock import Clock, iso, parse_iso
from review_ui.db import Store
from uplink.database import Database


class Verdict(enum.StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class RejectReason(enum.StrEnum):
    WRONG_OBJECT = "wrong_object"
    PERMITTED = "permitted"
    NOT_ON_SIDEWALK = "not_on_sidewalk"
    DETECTOR_ERROR = "detector_error"
    OTHER = "other"


class ClearedAction(enum.StrEnum):
    """What a confirmation does when the edge already reports the sidewalk clear."""

    REMIND = "remind"  # remind anyway: the shop should know it was seen
    CLOSE = "close"  # close as self-rectified, no reminder


class ReviewError(Exception):
    """A verdict that cannot be given (unknown incident, already decided, missing reason).

    `code` names the case for the pages (a catalogue key), e.g. `needs_cleared_action`."""

    def __init__(self, message: str, status_code: int = 409, code: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


@dataclass(frozen=True)
class VerdictResult:
    incident_id: str
    status: str
    reminder_ids: list[int]
    decided: list[str]  # every occurrence of the case this verdict decided


MAX_NOTE = 2000


class Reviewer:
    def __init__(
        self, store: Store, clock: Clock, deadline_h: float, default_locale: str, undo_s: float = 0.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.deadline = timedelta(hours=deadline_h)
        self.default_locale = default_locale
        self.undo = timedelta(seconds=undo_s)

    def give_verdict(
        self,
        incident_id: str,
        verdict: Verdict,
        reason: RejectReason | None,
        note: str,
        user: str,
        ip: str = "",
        cleared_action: ClearedAction | None = None,
        propose_fixture: bool = False,
    ) -> VerdictResult:
        if verdict is Verdict.REJECTED and reason is None:
            raise ReviewError("a rejection needs a reason", 422)
        if len(note) > MAX_NOTE:
            raise ReviewError(f"note longer than {MAX_NOTE} characters", 422)
        now = self.clock.now()
        with self.store.write() as db:
            row = db.execute(
                "SELECT i.shop_id, w.status FROM incidents i LEFT JOIN workflow w"
                " ON w.incident_id = i.incident_id WHERE i.incident_id = ?",
                [incident_id],
            ).fetchone()
            if row is None:
                raise ReviewError("no such incident", 404)
            shop_id, status = row
            if status not in (None, "pending"):
                raise ReviewError(f"incident already {status}")
            members = _undecided(db, cases.siblings(db, incident_id))
            head = members[-1]  # the newest occurrence: its evidence goes in the reminder
            head_cleared = head["state"] == "cleared"
            if verdict is Verdict.CONFIRMED and head_cleared and cleared_action is None:
                raise ReviewError(
                    "the edge reports this sidewalk already cleared: remind anyway or close as rectified",
                    409,
                    code="needs_cleared_action",
                )
            closing = verdict is Verdict.CONFIRMED and head_cleared and cleared_action is ClearedAction.CLOSE
            status_after = "rectified" if closing else verdict.value
            deadline = iso(now + self.deadline) if verdict is Verdict.CONFIRMED and not closing else None
            for member in members:
                self._decide(db, member, verdict, reason, note, user, status_after, deadline, now)
            cases.mark_decided(db, incident_id, True)
            audit.record(
                db,
                self.clock,
                user,
                f"verdict.{verdict.value}",
                incident_id,
                {
                    "reason": reason.value if reason else None,
                    "note": note,
                    "occurrences": [m["incident_id"] for m in members],
                    "cleared_action": cleared_action.value if head_cleared and cleared_action else None,
                },
                ip,
            )
            if closing:
                audit.record(db, self.clock, user, "workflow.self_rectified", incident_id, {}, ip)
            if propose_fixture and verdict is Verdict.REJECTED:
                proposals.propose(db, self.clock, incident_id, user, ip)
            reminder_ids: list[int] = []
            if verdict is Verdict.CONFIRMED and not closing and deadline is not None:
                reminder_ids = self._queue_reminder(
                    db, str(head["incident_id"]), shop_id, user, deadline, now
                )
        decided = [str(m["incident_id"]) for m in members]
        return VerdictResult(incident_id, status_after, reminder_ids, decided)

    def _decide(
        self,
        db: Database,
        member: dict[str, object],
        verdict: Verdict,
        reason: RejectReason | None,
        note: str,
        user: str,
        status: str,
        deadline: str | None,
        now: datetime,
    ) -> None:
        db.execute(
            "INSERT INTO verdicts (incident_id, verdict, reason, note, username, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [member["incident_id"], verdict.value, reason.value if reason else None, note, user, iso(now)],
        )
        db.execute(
            "INSERT INTO workflow (incident_id, status, updated_at, deadline_at, opened_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(incident_id) DO UPDATE SET status = excluded.status,"
            " updated_at = excluded.updated_at, deadline_at = excluded.deadline_at",
            [member["incident_id"], status, iso(now), deadline, member["opened_at"]],
        )

    def _queue_reminder(
        self,
        db: Database,
        incident_id: str,
        shop_id: str,
        user: str,
        deadline: str,
        now: datetime,
    ) -> list[int]:
        shop = db.execute("SELECT channel, target, locale FROM shops WHERE id = ?", [shop_id]).fetchone()
        if shop is None:
            audit.record(
                db,
                self.clock,
                "system",
                "reminder.skipped",
                incident_id,
                {"shop_id": shop_id, "why": "shop not in the registry"},
            )
            return []
        cursor = db.execute(
            "INSERT INTO reminders (incident_id, shop_id, channel, target, locale, status,"
            " attempts, next_attempt_at, deadline_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) RETURNING id",
            [
                incident_id,
                shop_id,
                shop[0],
                shop[1],
                shop[2] or self.default_locale,
                iso(now + self.undo),  # the undo window: nothing leaves before it ends
                deadline,
                iso(now),
            ],
        )
        reminder_id = int(cursor.fetchone()[0])
        audit.record(
            db,
            self.clock,
            user,
            "reminder.queued",
            incident_id,
            {"reminder_id": reminder_id, "channel": shop[0], "shop_id": shop_id},
        )
        return [reminder_id]

    def undo_window(self, incident_id: str) -> dict[str, object] | None:
        """The verdict still undoable on this incident: {at, user, seconds_left}, or None."""
        db = self.store.read()
        verdict = _last_verdict(db, incident_id)
        if verdict is None:
            return None
        left = (parse_iso(verdict["at"]) + self.undo - self.clock.now()).total_seconds()
        if left <= 0 or _sent_since(db, cases.siblings(db, incident_id), verdict["at"]):
            return None
        return {"at": verdict["at"], "user": verdict["user"], "seconds_left": int(left + 0.999)}

    def undo_verdict(self, incident_id: str, user: str, may_undo_others: bool, ip: str = "") -> list[str]:
        """Take back the case's last verdict and its unsent reminder; returns the reopened ids."""
        now = self.clock.now()
        with self.store.write() as db:
            verdict = _last_verdict(db, incident_id)
            if verdict is None:
                raise ReviewError("no verdict to undo", 409)
            if verdict["user"] != user and not may_undo_others:
                raise ReviewError("only who gave the verdict (or an admin) can undo it", 403)
            members = cases.siblings(db, incident_id)
            if parse_iso(verdict["at"]) + self.undo < now or _sent_since(db, members, verdict["at"]):
                raise ReviewError("too late to undo: the reminder has left", 409, code="undo_too_late")
            marks = ",".join("?" * len(members))
            decided_then = {
                r[0]
                for r in db.execute(
                    f"SELECT incident_id FROM verdicts WHERE at = ? AND incident_id IN ({marks})",
                    [verdict["at"], *members],
                )
            }
            reopened = [m for m in members if m in decided_then]  # oldest first, as members are
            marks = ",".join("?" * len(reopened))
            db.execute(
                f"DELETE FROM verdicts WHERE at = ? AND incident_id IN ({marks})", [verdict["at"], *reopened]
            )
            db.execute(f"DELETE FROM workflow WHERE incident_id IN ({marks})", reopened)
            cases.mark_decided(db, incident_id, False)
            db.execute(
                f"DELETE FROM reminders WHERE status = 'pending' AND attempts = 0 AND created_at = ?"
                f" AND incident_id IN ({marks})",
                [verdict["at"], *reopened],
            )
            audit.record(
                db,
                self.clock,
                user,
                "verdict.undone",
                incident_id,
                {"verdict": verdict["verdict"], "occurrences": reopened},
                ip,
            )
        return reopened


def _undecided(db: Database, incident_ids: list[str]) -> list[dict[str, object]]:
    """The incidents among these without a verdict yet, oldest first."""
    marks = ",".join("?" * len(incident_ids))
    return list(
        db.query(
            "SELECT i.incident_id, i.state, COALESCE(i.opened_at, i.first_seen_at) AS opened_at"
            " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            f" WHERE i.incident_id IN ({marks}) AND (w.incident_id IS NULL OR w.status = 'pending')"
            " ORDER BY 3, 1",
            incident_ids,
        )
    )


def _last_verdict(db: Database, incident_id: str) -> dict[str, str] | None:
    rows = list(
        db.query(
            'SELECT verdict, username AS "user", at FROM verdicts'
            " WHERE incident_id = ? ORDER BY id DESC LIMIT 1",
            [incident_id],
        )
    )
    return rows[0] if rows else None


def _sent_since(db: Database, incident_ids: list[str], at: str) -> bool:
    """Did a reminder of these incidents, created by the verdict at `at`, already go out (or try)?"""
    marks = ",".join("?" * len(incident_ids))
    row = db.execute(
        f"SELECT 1 FROM reminders WHERE created_at = ? AND incident_id IN ({marks})"
        " AND (status != 'pending' OR attempts > 0) LIMIT 1",
        [at, *incident_ids],
    ).fetchone()
    return row is not None
