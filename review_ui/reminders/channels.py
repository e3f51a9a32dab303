"""Delivery channels. Each `send` returns on success and raises `DeliveryError` otherwise."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import paho.mqtt.client as mqtt

from review_ui.reminders.message import ReminderContent

SIGNATURE_HEADER = "X-Curbwatch-Signature"
TIMESTAMP_HEADER = "X-Curbwatch-Timestamp"


class DeliveryError(Exception):
    """Delivery failed; the message is safe to log (no credentials)."""


class Channel(Protocol):
    def send(self, target: str, content: ReminderContent) -> str | None:
        """Deliver; returns the provider's id for the message (SMS BizId / SerialNo, the case
        system's case number) where it gives one."""
        ...


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def header_value(text: str, limit: int = 900) -> str:
    """A header-safe one-line value: CR, LF and other controls (from a label, a shop name) become
    spaces, so the message can be built at all (email refuses them, and they must never split a
    header); overlong values are cut."""
    return _CONTROL.sub(" ", text).strip()[:limit]


class EmailChannel:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self._password = starttls, username, password
        self.timeout_s = timeout_s
        self._wall = wall

    def build(self, target: str, content: ReminderContent) -> EmailMessage:
        subject, body = content.render()
        message = EmailMessage()
        message["From"] = header_value(self.sender)
        message["To"] = header_value(target)
        message["Subject"] = header_value(subject)
        message["X-Curbwatch-Incident"] = header_value(content.incident_id)
        # RFC 5322 wants both; spam filters and mail clients sort and thread by them.
        message["Date"] = formatdate(self._wall(), localtime=False, usegmt=True)
        domain = self.sender.rpartition("@")[2] or "curbwatch.invalid"
        message["Message-ID"] = make_msgid(f"reminder-{content.reminder_id}", domain=header_value(domain))
        message.set_content(body)
        if content.evidence_file is not None and content.evidence_file.is_file():
            message.add_attachment(
                content.evidence_file.read_bytes(),
                maintype="image",
                subtype="jpeg",
                filename=f"evidence-{content.incident_id}.jpg",
            )
        return message

    def send(self, target: str, content: ReminderContent) -> None:
        message = self.build(target, content)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """sha256=hex(HMAC(secret, timestamp + "." + body)); the receiver rejects old timestamps."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, secret: bytes, timeout_s: float = 10.0, wall: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.timeout_s = timeout_s
        self.wall = wall

    def send(self, target: str, content: ReminderContent) -> None:
        body = json.dumps(content.as_json(), ensure_ascii=False).encode("utf-8")
        timestamp = str(int(self.wall()))
        request = urllib.request.Request(
            target,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
                "User-Agent": "curbwatch-review",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"webhook answered HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook answered HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}") from exc


class MqttChannel:
    """Publishes the reminder JSON on the shop's topic with QoS 1. A PUBACK only says the broker
    took it (a broker whose ACL denies the topic PUBACKs too): the reminders page therefore calls
    such a reminder "published", not "sent to the shop"."""

    def __init__(self, client: mqtt.Client, timeout_s: float = 10.0) -> None:
        self.client = client
        self.timeout_s = timeout_s

    def send(self, target: str, content: ReminderContent) -> None:
        body = json.dumps(content.as_json(), ensure_ascii=False).encode("utf-8")
        info = self.client.publish(target, body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeliveryError(f"mqtt publish refused: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(timeout=self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"mqtt: {exc}") from exc
        if not info.is_published():
            raise DeliveryError("mqtt: no PUBACK in time")


class UnavailableChannel:
    """The null channel for a channel that is not configured (e.g. no broker)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def send(self, target: str, content: ReminderContent) -> None:
        raise DeliveryError(self.why)
