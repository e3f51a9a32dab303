"""Verdict -> reminder outbox -> real SMTP / real HTTP webhook / MQTT; retries; closing the loop."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from review_ui.clock import ManualClock
from review_ui.config import ReviewConfig
from review_ui.reminders.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER
from review_ui.review import RejectReason, ReviewError, Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.support import Inbox, incident_message, login
from tests.support.broker import free_port
from tests.support.database import UsersTemplate
from uplink.messages import IncidentEventKind


def add_shop(server: ReviewServer, channel: str, target: str, locale: str = "zh-CN") -> None:
    from review_ui.shops import ShopIn

    server.context.shops.create(
        ShopIn(
            id="shop-12",
            name="东街12号便利店",
            operator="王老板",
            channel=channel,
            target=target,  # type: ignore[arg-type]
            locale=locale,
        ),  # type: ignore[arg-type]
        "test",
    )


def build(tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, **overrides: object) -> ReviewServer:

    config = make_config(tmp_path, **overrides)
    users_db.seed(config)
    return ReviewServer(config, clock=clock)


def test_confirm_sends_mail_with_evidence(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    server = build(
        tmp_path, clock, users_db, smtp={"host": "127.0.0.1", "port": port, "sender": "cg@city.example"}
    )
    feed = Feed(server.config)
    iid = feed.send(incident_message())
    add_shop(server, "email", "owner@shop.example")
    with TestClient(server.app, base_url="https://testserver") as client:
        csrf = login(client, "inspector")
        response = client.post(
            f"/incidents/{iid}/verdict",
            data={"verdict": "confirmed", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert response.status_code == 303
    assert server.dispatcher.run_once() == 1
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert inbox.envelopes[0] == ("cg@city.example", ["owner@shop.example"])
    assert "整改提醒" in str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    body = mail.get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index,union-attr]
    assert (
        "东街12号便利店" in body and "2026-05-02 10:00 CST" in body and iid in body
    )  # deadline +24 h, local
    attachment = mail.get_payload()[1]  # type: ignore[index]
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_payload(decode=True)[:3] == b"\xff\xd8\xff"
    db = server.store.read()
    assert db.execute("SELECT status, attempts FROM reminders").fetchone() == ("sent", 1)
    assert db.execute("SELECT status FROM workflow WHERE incident_id = ?", [iid]).fetchone()[0] == "reminded"
    whats = [r[0] for r in db.execute("SELECT what FROM audit_log")]
    assert {"verdict.confirmed", "reminder.queued", "reminder.sent"} <= set(whats)
    feed.db.close()
    server.store.close()


def test_reject_needs_a_reason_and_creates_no_reminder(
    server: ReviewServer, feed: Feed, client: TestClient
) -> None:
    add_shop(server, "email", "owner@shop.example")
    iid = feed.send(incident_message())
    csrf = login(client, "inspector")
    no_reason = client.post(
        f"/api/v1/incidents/{iid}/verdict", json={"verdict": "rejected"}, headers={"X-CSRF-Token": csrf}
    )
    assert no_reason.status_code == 422
    bad_reason = client.post(
        f"/api/v1/incidents/{iid}/verdict",
        json={"verdict": "rejected", "reason": "meh"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad_reason.status_code == 422
    ok = client.post(
        f"/api/v1/incidents/{iid}/verdict",
        json={"verdict": "rejected", "reason": "permitted", "note": "licensed cafe"},
        headers={"X-CSRF-Token": csrf},
    )
    assert ok.status_code == 200 and ok.json()["reminder_ids"] == []
    db = server.store.read()
    assert db.execute("SELECT count(*) FROM reminders").fetchone()[0] == 0
    assert db.execute("SELECT verdict, reason, note, username FROM verdicts").fetchone() == (
        "rejected",
        "permitted",
        "licensed cafe",
        "inspector",
    )
    again = client.post(
        f"/api/v1/incidents/{iid}/verdict", json={"verdict": "confirmed"}, headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409
    assert (
        client.post(
            "/api/v1/incidents/nope/verdict", json={"verdict": "confirmed"}, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 404
    )


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_next = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Hook.fail_next:
            Hook.fail_next -= 1
            self.send_response(503)
            self.end_headers()
            return
        Hook.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received, Hook.fail_next = [], 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()


def test_webhook_is_signed_and_retried(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, webhook: str
) -> None:
    secret = tmp_path / "hook.key"
    secret.write_text("s3cret-hook-key")
    server = build(tmp_path, clock, users_db, webhook={"secret_file": str(secret)})
    feed = Feed(server.config)
    add_shop(server, "webhook", webhook, locale="en")
    iid = feed.send(incident_message())
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    Hook.fail_next = 1
    assert server.dispatcher.run_once() == 0
    row = (
        server.store.read()
        .execute("SELECT status, attempts, last_error, next_attempt_at FROM reminders")
        .fetchone()
    )
    assert row[:3] == ("pending", 1, "webhook answered HTTP 503")
    assert server.dispatcher.run_once() == 0  # not due yet: backoff
    clock.advance(5)
    assert server.dispatcher.run_once() == 1
    headers, body = Hook.received[0]
    expected = (
        "sha256="
        + hmac.new(
            b"s3cret-hook-key", headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
    )
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    document = json.loads(body)
    assert document["incident_id"] == iid
    assert document["evidence_url"].startswith(f"https://review.example/e/{iid}?exp=")
    assert document["subject"].startswith("Rectification reminder")
    feed.db.close()
    server.store.close()


def test_retries_back_off_then_fail(tmp_path: Path, clock: ManualClock, users_db: UsersTemplate) -> None:
    dead_port = free_port()  # nothing listens here
    server = build(tmp_path, clock, users_db, smtp={"host": "127.0.0.1", "port": dead_port, "timeout_s": 2})
    feed = Feed(server.config)
    add_shop(server, "email", "owner@shop.example")
    iid = feed.send(incident_message())
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    db = server.store.read()
    for _ in range(3):
        server.dispatcher.run_once()
        status, attempts = db.execute("SELECT status, attempts FROM reminders").fetchone()
        clock.advance(120)
    assert (status, attempts) == ("failed", 3)
    assert "ConnectionRefusedError" in db.execute("SELECT last_error FROM reminders").fetchone()[0]
    assert db.execute("SELECT status FROM workflow").fetchone()[0] == "confirmed"
    assert server.dispatcher.retry(1, "admin") is True
    assert db.execute("SELECT status, attempts FROM reminders").fetchone() == ("pending", 0)
    feed.db.close()
    server.store.close()


def test_backoff_doubles_and_is_capped(server: ReviewServer) -> None:
    seconds = [server.dispatcher.backoff(n).total_seconds() for n in range(1, 7)]
    assert seconds == [5, 10, 20, 40, 60, 60]


def cleared(iid: str, seq: int) -> object:
    import uuid

    return incident_message(uuid.UUID(iid), seq, IncidentEventKind.CLEARED, evidence=False)


def test_cleared_after_reminder_is_rectified(
    server: ReviewServer, feed: Feed, clock: ManualClock, smtp: tuple[Inbox, int]
) -> None:
    add_shop(server, "email", "owner@shop.example")
    iid = feed.send(incident_message())
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    server.dispatcher.channels["email"].port = smtp[1]  # type: ignore[attr-defined]
    assert server.dispatcher.run_once() == 1
    checker = server.worker.checker
    assert checker.run_once() == 0
    feed.send(cleared(iid, 1))  # type: ignore[arg-type]
    assert checker.run_once() == 1
    assert server.store.read().execute("SELECT status FROM workflow").fetchone()[0] == "rectified"


def test_still_open_at_deadline_is_escalated(server: ReviewServer, feed: Feed, clock: ManualClock) -> None:
    iid = feed.send(incident_message())
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    checker = server.worker.checker
    clock.advance(24 * 3600 - 1)
    assert checker.run_once() == 0
    clock.advance(1)
    assert checker.run_once() == 1
    db = server.store.read()
    assert db.execute("SELECT status FROM workflow").fetchone()[0] == "escalated"
    assert db.execute("SELECT what FROM audit_log ORDER BY id DESC").fetchone()[0] == "workflow.escalated"


def test_verdict_errors(server: ReviewServer, feed: Feed) -> None:
    iid = feed.send(incident_message())
    with pytest.raises(ReviewError):
        server.context.reviewer.give_verdict(iid, Verdict.REJECTED, None, "", "inspector")
    with pytest.raises(ReviewError):
        server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "x" * 3000, "inspector")
    server.context.reviewer.give_verdict(iid, Verdict.REJECTED, RejectReason.OTHER, "", "inspector")


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ReviewConfig.model_validate({"db_path": "x", "evidence_dir": "y", "secret_key_file": "z", "typo": 1})


def test_a_line_break_in_a_label_or_shop_name_cannot_break_or_block_the_mail() -> None:
    """Issue 10 case 11: CR/LF from the wire made every attempt fail (and could forge headers)."""
    from review_ui.reminders.channels import EmailChannel
    from review_ui.reminders.message import ReminderContent

    content = ReminderContent(
        reminder_id=1, incident_id="abc", shop_id="s", shop_name="East\r\nBcc: victim@example.com",
        operator="", locale="en", label="chair\r\nX-Evil: 1", camera_id="cam", zone_id="z",
        opened_at="2026-05-01T02:00:00.000000Z", deadline_at="2026-05-01T03:00:00.000000Z",
        evidence_url="https://review.example/e/abc", evidence_file=None,
    )  # fmt: skip
    message = EmailChannel("127.0.0.1", 25, "curbwatch@example.com").build("shop@example.com", content)
    headers = message.as_string().split("\n\n", 1)[0]  # in the body, the text is only text
    assert "\nBcc:" not in headers and "\nX-Evil:" not in headers
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "\r" not in str(message["Subject"]) and "\n" not in str(message["Subject"])


def test_the_mail_has_a_date_and_a_message_id() -> None:
    from email.utils import parsedate_to_datetime

    from review_ui.reminders.channels import EmailChannel
    from review_ui.reminders.message import ReminderContent

    content = ReminderContent(
        reminder_id=7, incident_id="abc", shop_id="s", shop_name="东水果店", operator="", locale="zh-CN",
        label="chair", camera_id="cam", zone_id="z", opened_at="2026-05-01T02:00:00.000000Z",
        deadline_at="2026-05-01T03:00:00.000000Z", evidence_url="https://r.example/e/abc", evidence_file=None,
    )  # fmt: skip
    channel = EmailChannel("127.0.0.1", 25, "curbwatch@city.example", wall=lambda: 1_777_600_000.0)
    message = channel.build("shop@example.com", content)
    assert parsedate_to_datetime(str(message["Date"])).timestamp() == 1_777_600_000.0
    assert str(message["Message-ID"]).startswith("<") and "@city.example>" in str(message["Message-ID"])
    assert "reminder-7" in str(message["Message-ID"])


def test_the_mail_names_the_object_in_the_shops_language() -> None:
    from review_ui.reminders.message import ReminderContent

    fields = dict(
        reminder_id=1, incident_id="abc", shop_id="s", shop_name="东水果店", operator="", label="bicycle",
        camera_id="cam", zone_id="z", opened_at="2026-05-01T02:00:00.000000Z",
        deadline_at="2026-05-01T03:00:00.000000Z", evidence_url="https://r.example/e/abc", evidence_file=None,
    )  # fmt: skip
    subject, body = ReminderContent(locale="zh-CN", **fields).render()  # type: ignore[arg-type]
    assert "自行车" in subject and "bicycle" not in subject and "2026-05-01 10:00 CST" in body
    subject, _ = ReminderContent(locale="en", **fields).render()  # type: ignore[arg-type]
    assert "bicycle" in subject
    odd, _ = ReminderContent(locale="zh-CN", **{**fields, "label": "widget"}).render()  # type: ignore[arg-type]
    assert "widget" in odd
