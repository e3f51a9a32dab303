"""/events over a real socket: a new MQTT incident pushes a new change token to the stream."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from review_ui.service import ReviewServer
from tests.review_ui.conftest import make_config
from tests.review_ui.mqtt_support import EdgeLike
from tests.review_ui.support import CAMERA, NODE, PASSWORD, PREFIX, incident_message
from tests.support.broker import MosquittoBroker, free_port
from tests.support.database import UsersTemplate
from uplink.messages import to_json


@pytest.fixture
def running(tmp_path: Path, broker: MosquittoBroker, users_db: UsersTemplate) -> Iterator[ReviewServer]:
    port = free_port()
    config = make_config(
        tmp_path,
        port=port,
        secure_cookies=False,
        mqtt={"host": broker.host, "port": broker.port, "client_id": "review-sse"},
    )
    users_db.seed(config)
    server = ReviewServer(config)
    with server.running():
        assert server.ingest is not None and server.ingest.wait_subscribed(10)
        yield server


def logged_in(base: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=10)
    page = http.get("/login").text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = http.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 303
    return http


def read_events(response: httpx.Response, into: queue.Queue[tuple[str, str]]) -> None:
    event = ""
    try:
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                into.put((event, line[6:]))
    except httpx.HTTPError:
        pass  # the test closed the stream


def test_a_new_incident_is_pushed_to_the_stream(running: ReviewServer, broker: MosquittoBroker) -> None:
    base = f"http://127.0.0.1:{running.config.port}"
    assert httpx.get(f"{base}/events", follow_redirects=False).status_code == 303  # login first
    http = logged_in(base)
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    with http.stream("GET", "/events", timeout=httpx.Timeout(10, read=30)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = threading.Thread(target=read_events, args=(response, events), daemon=True)
        reader.start()
        first = events.get(timeout=10)
        assert first[0] == "change"
        assert first[1] == http.get("/api/v1/changes").json()["token"]
        edge = EdgeLike(broker, "edge-sse")
        edge.publish(f"{PREFIX}/{NODE}/{CAMERA}/incident", to_json(incident_message()))
        # pushed by the ingest's on_change, well before the 5 s re-check would find it
        kind, token = events.get(timeout=4)
        assert kind == "change" and token != first[1]
        assert token == http.get("/api/v1/changes").json()["token"]
        edge.close()
        running.changes.close()  # shutdown ends open streams instead of waiting on them
        reader.join(5)
        assert not reader.is_alive()
    http.close()


def test_a_change_made_by_another_process_reaches_the_stream_within_two_seconds(
    running: ReviewServer,
) -> None:
    """A second review server or a separate ingest worker writes the same database without this
    process's notifier: the stream's re-check finds it."""
    import time

    from review_ui.clock import SystemClock
    from review_ui.db import Store
    from review_ui.review import RejectReason, Reviewer, Verdict
    from tests.review_ui.conftest import Feed

    base = f"http://127.0.0.1:{running.config.port}"
    iid = Feed(running.config).send(incident_message())
    http = logged_in(base)
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    with http.stream("GET", "/events", timeout=httpx.Timeout(10, read=30)) as response:
        reader = threading.Thread(target=read_events, args=(response, events), daemon=True)
        reader.start()
        first = events.get(timeout=10)
        other = Store(running.config.database)  # the other process's connection and reviewer
        Reviewer(other, SystemClock(), 24, "zh-CN").give_verdict(
            iid, Verdict.REJECTED, RejectReason.OTHER, "", "inspector"
        )
        decided = time.monotonic()
        kind, token = events.get(timeout=4)
        assert kind == "change" and token != first[1]
        assert time.monotonic() - decided < 2.0
        other.close()
        running.changes.close()
        reader.join(5)
    http.close()
