"""When an SMS may leave for a shop: not in the quiet hours, not over the per-shop rate limit.

A held SMS is not a failed one: the dispatcher moves its next attempt to the time given here
and counts no attempt (review_ui.reminders.dispatcher)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from review_ui.clock import iso, parse_iso
from review_ui.localtime import display_zone
from review_ui.reminders.settings import QuietHours, SmsSettings
from uplink.database import Database


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(quiet: QuietHours, now: datetime, timezone: str) -> datetime | None:
    """The end of the quiet hours `now` lies in (aware, UTC), or None outside them."""
    zone = display_zone(timezone)
    local = now.astimezone(zone)
    start, end = _hhmm(quiet.start), _hhmm(quiet.end)
    clock = local.time()
    overnight = start > end  # e.g. 21:00-08:00
    inside = (clock >= start or clock < end) if overnight else (start <= clock < end)
    if not inside:
        return None
    # Overnight hours entered before midnight end tomorrow.
    day = local.date() + timedelta(days=1) if overnight and clock >= start else local.date()
    return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)


class SmsSendWindow:
    def __init__(self, settings: SmsSettings, timezone: str) -> None:
        self.settings = settings
        self.timezone = timezone
        self.window = timedelta(hours=settings.per_shop_window_h)

    def hold_until(self, db: Database, shop_id: str, now: datetime) -> tuple[datetime, str] | None:
        """(not before, why) when this shop's SMS must wait; None when it may leave now."""
        if self.settings.quiet_hours is not None:
            until = quiet_until(self.settings.quiet_hours, now, self.timezone)
            if until is not None:
                return until, "quiet_hours"
        sent = [
            row[0]
            for row in db.execute(
                "SELECT sent_at FROM reminders WHERE shop_id = ? AND channel = 'sms' AND sent_at >= ?"
                " ORDER BY sent_at",
                [shop_id, iso(now - self.window)],
            ).fetchall()
        ]
        if len(sent) >= self.settings.max_per_shop:
            # The oldest SMS in the window leaves it first and frees a slot.
            oldest = sent[len(sent) - self.settings.max_per_shop]
            return parse_iso(oldest) + self.window, "rate_limit"
        return None
