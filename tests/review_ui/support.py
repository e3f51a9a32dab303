"""Test material for the review server: incident messages with a real JPEG, logins, waits."""

from __future__ import annotations

import email
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import cv2
import numpy as np
from fastapi.testclient import TestClient

from uplink.messages import Evidence, IncidentEventKind, IncidentMessage, Shop, to_json

T0 = datetime(2026, 5, 1, 2, 0, 0, tzinfo=UTC)
NODE = "node-a"
CAMERA = "cam-01"
PREFIX = "curbwatch/v1"
PASSWORD = "correct horse battery"


def jpeg(width: int = 320, height: int = 180, seed: int = 0) -> bytes:
    """A real JPEG: a grey street with a coloured block where the 'goods' are."""
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.rectangle(image, (32, 90), (96, 162), (40, 120 + seed % 100, 200), -1)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def incident_message(
    incident_id: uuid.UUID | None = None,
    seq: int = 0,
    event: IncidentEventKind = IncidentEventKind.OPENED,
    *,
    shop_id: str = "shop-12",
    camera_id: str = CAMERA,
    at: datetime | None = None,
    evidence: bool = True,
    **overrides: Any,
) -> IncidentMessage:
    fields: dict[str, Any] = {
        "incident_id": incident_id or uuid.uuid4(),
        "seq": seq,
        "event": event,
        "node_id": NODE,
        "camera_id": camera_id,
        "zone_id": "door-12-sidewalk",
        "shop": Shop(id=shop_id, name="东街12号"),
        "label": "chair",
        "confidence": 0.81,
        "bbox": (0.1, 0.5, 0.3, 0.9),
        "first_seen_at": T0,
        "at": at or T0 + timedelta(seconds=60 + 30 * seq),
        "evidence": Evidence.from_jpeg(jpeg(seed=seq)) if evidence else None,
    }
    fields.update(overrides)
    return IncidentMessage(**fields)


def incident_topic(camera_id: str = CAMERA) -> str:
    return f"{PREFIX}/{NODE}/{camera_id}/incident"


def payload(message: IncidentMessage) -> bytes:
    return to_json(message)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DATA_CSRF = re.compile(r'data-csrf="([^"]+)"')


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Logs in through the form (as a fresh visitor); returns the session's CSRF token."""
    client.cookies.clear()
    page = client.get("/login")
    token = CSRF.search(page.text)
    assert token, page.text
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return session_csrf(client)


def session_csrf(client: TestClient) -> str:
    page = client.get("/queue")
    found = DATA_CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        return "250 OK"
