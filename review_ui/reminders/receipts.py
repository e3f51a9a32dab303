"""SMS delivery receipts: asks the provider what the carrier reported for each sent SMS.

SendSms answering OK only means the provider accepted the message; the carrier's report
(delivered, or e.g. switched off / blocked) comes minutes later and is stored on the row."""

from __future__ import annotations

import logging
from datetime import timedelta

from review_ui import audit
from review_ui.clock import Clock, iso
from review_ui.db import Store
from review_ui.reminders.channels import DeliveryError
from review_ui.reminders.sms import SmsChannel

log = logging.getLogger(__name__)
BATCH = 20


class ReceiptPoller:
    def __init__(
        self, store: Store, clock: Clock, channel: SmsChannel, poll_s: float, max_age_h: float
    ) -> None:
        self.store = store
        self.clock = clock
        self.channel = channel
        self.poll = timedelta(seconds=poll_s)
        self.max_age = timedelta(hours=max_age_h)

    def run_once(self) -> int:
        """Ask for the receipts now due; returns how many came back with a final status."""
        now = self.clock.now()
        rows = (
            self.store.read()
            .execute(
                "SELECT id, incident_id, target, provider_ref, sent_at FROM reminders"
                " WHERE channel = 'sms' AND status = 'sent' AND delivery IS NULL AND provider_ref IS NOT NULL"
                " AND sent_at BETWEEN ? AND ? AND (receipt_checked_at IS NULL OR receipt_checked_at <= ?)"
                " ORDER BY sent_at LIMIT ?",
                # The carrier reports after seconds to minutes: the first question waits one interval.
                [iso(now - self.max_age), iso(now - self.poll), iso(now - self.poll), BATCH],
            )
            .fetchall()
        )
        final = 0
        for reminder_id, incident_id, target, provider_ref, sent_at in rows:
            try:
                receipt = self.channel.receipt(provider_ref, target, sent_at)
            except DeliveryError as exc:
                log.warning("reminder %s: receipt query failed: %s", reminder_id, exc)
                receipt = None
            with self.store.write() as db:
                if receipt is None:
                    db.execute(
                        "UPDATE reminders SET receipt_checked_at = ? WHERE id = ?", [iso(now), reminder_id]
                    )
                    continue
                delivery = "delivered" if receipt.delivered else "undelivered"
                db.execute(
                    "UPDATE reminders SET delivery = ?, delivery_detail = ?, delivered_at = ?,"
                    " receipt_checked_at = ? WHERE id = ?",
                    [delivery, receipt.detail, receipt.received_at, iso(now), reminder_id],
                )
                audit.record(
                    db,
                    self.clock,
                    "system",
                    "reminder.delivered" if receipt.delivered else "reminder.undelivered",
                    incident_id,
                    {"reminder_id": reminder_id, "provider_ref": provider_ref, "detail": receipt.detail},
                )
            final += 1
        return final
