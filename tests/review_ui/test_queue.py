"""Queue listing, filters (bound parameters only), live change token, incident page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from review_ui.review import RejectReason, Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed
from tests.review_ui.support import T0, incident_message, login

HOSTILE = [
    "' OR 1=1 --",
    '"; DROP TABLE incidents; --',
    "%",
    "_",
    "cam-01' UNION SELECT * FROM users --",
    "\\",
]


@pytest.fixture
def three(feed: Feed) -> list[str]:
    return [
        feed.send(incident_message(at=T0 + timedelta(minutes=2), camera_id="cam-02", shop_id="shop-2")),
        feed.send(incident_message(at=T0 + timedelta(minutes=1))),
        feed.send(incident_message(at=T0 + timedelta(days=2))),
    ]


def test_pending_oldest_first_with_counts(client: TestClient, server: ReviewServer, three: list[str]) -> None:
    login(client, "viewer")
    body = client.get("/api/v1/incidents").json()
    assert [row["incident_id"] for row in body["incidents"]] == [three[1], three[0], three[2]]
    assert body["counts"]["pending"] == 3
    server.context.reviewer.give_verdict(three[1], Verdict.REJECTED, RejectReason.OTHER, "", "x")
    body = client.get("/api/v1/incidents").json()
    assert [row["incident_id"] for row in body["incidents"]] == [three[0], three[2]]
    assert body["counts"]["pending"] == 2 and body["counts"]["rejected"] == 1
    assert client.get("/api/v1/incidents?status=rejected").json()["incidents"][0]["incident_id"] == three[1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("camera=cam-02", [0]),
        ("shop=shop-2", [0]),
        ("zone=door-12-sidewalk", [1, 0, 2]),
        ("from=2026-05-02", [2]),
        ("to=2026-05-01", [1, 0]),
        ("from=2026-05-01&to=2026-05-01&camera=cam-01", [1]),
    ],
)
def test_filters(client: TestClient, three: list[str], query: str, expected: list[int]) -> None:
    login(client, "viewer")
    rows = client.get(f"/api/v1/incidents?{query}").json()["incidents"]
    assert [row["incident_id"] for row in rows] == [three[i] for i in expected]
    page = client.get(f"/queue?{query}")
    assert page.status_code == 200
    for i in range(3):
        assert (three[i] in page.text) == (i in expected)


@pytest.mark.parametrize("value", HOSTILE)
def test_sql_metacharacters_are_just_text(
    client: TestClient, server: ReviewServer, three: list[str], value: str
) -> None:
    login(client, "viewer")
    for name in ("camera", "zone", "shop"):
        assert client.get("/api/v1/incidents", params={name: value}).json()["incidents"] == []
        assert client.get("/queue", params={name: value}).status_code == 200
    assert client.get("/queue", params={"from": value, "status": value}).status_code == 200
    assert server.store.read().execute("SELECT count(*) FROM incidents").fetchone()[0] == 3


def test_change_token_moves_with_new_events_and_verdicts(
    client: TestClient, server: ReviewServer, feed: Feed
) -> None:
    login(client, "viewer")
    first = client.get("/api/v1/changes").json()["token"]
    assert client.get("/api/v1/changes").json()["token"] == first
    iid = feed.send(incident_message())
    second = client.get("/api/v1/changes").json()["token"]
    assert second != first
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "x")
    assert client.get("/api/v1/changes").json()["token"] != second
    assert iid not in client.get("/queue?partial=1").text


def test_incident_page_shows_evidence_timeline_and_forms(client: TestClient, feed: Feed) -> None:
    import uuid

    from uplink.messages import IncidentEventKind

    iid = feed.send(incident_message())
    feed.send(incident_message(uuid.UUID(iid), 1, IncidentEventKind.UPDATED))
    login(client, "inspector")
    page = client.get(f"/incidents/{iid}").text
    assert f'src="/evidence/{iid}"' in page and 'id="evidence-figure"' in page
    assert page.count("<li>") >= 2 and "发现" in page and "更新" in page  # the timeline, in Chinese
    assert 'id="confirm-form"' in page and 'name="reason"' in page
    login(client, "viewer")
    assert 'id="confirm-form"' not in client.get(f"/incidents/{iid}").text
    assert client.get("/incidents/does-not-exist").status_code == 404


def test_incident_page_shows_before_and_now_when_the_edge_sent_them(client: TestClient, feed: Feed) -> None:
    from tests.review_ui.support import jpeg
    from uplink.messages import Evidence

    with_scene = feed.send(incident_message(before_now=Evidence.from_jpeg(jpeg(640, 200, seed=7))))
    without = feed.send(incident_message())
    login(client, "inspector")
    page = client.get(f"/incidents/{with_scene}").text
    assert f'src="/evidence/{with_scene}/before-now"' in page and 'class="before-now"' in page
    picture = client.get(f"/evidence/{with_scene}/before-now")
    assert picture.status_code == 200 and picture.content.startswith(b"\xff\xd8\xff")
    assert 'class="before-now"' not in client.get(f"/incidents/{without}").text
    assert client.get(f"/evidence/{without}/before-now").status_code == 404
    client.cookies.clear()
    assert client.get(f"/evidence/{with_scene}/before-now", follow_redirects=False).status_code == 303


def test_labels_timeline_and_states_speak_chinese(client: TestClient, feed: Feed) -> None:
    iid = feed.send(incident_message(label="static object"))
    login(client, "inspector")
    page = client.get(f"/incidents/{iid}?lang=zh-CN").text
    assert "静止物体" in page and "发现" in page
    english = client.get(f"/incidents/{iid}?lang=en").text
    assert "static object" in english and "opened" in english
    queue = client.get("/queue?lang=zh-CN").text
    assert "静止物体" in queue
