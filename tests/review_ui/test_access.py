"""Roles per route, CSRF on every state change, evidence lookup never follows a path."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed
from tests.review_ui.support import incident_message, login

SHOP = {"id": "shop-12", "name": "东街12号", "channel": "email", "target": "owner@shop.example"}

# (method, path, needed role, form or json body); {iid} is a real incident id.
MUTATIONS = [
    ("POST", "/incidents/{iid}/verdict", "inspector", {"form": {"verdict": "confirmed"}}),
    ("POST", "/api/v1/incidents/{iid}/verdict", "inspector", {"json": {"verdict": "confirmed"}}),
    ("POST", "/shops", "admin", {"form": SHOP}),
    ("POST", "/api/v1/shops", "admin", {"json": SHOP}),
    ("PUT", "/api/v1/shops/shop-12", "admin", {"json": SHOP}),
    ("DELETE", "/api/v1/shops/shop-12", "admin", {}),
    ("POST", "/shops/shop-12", "admin", {"form": SHOP}),
    ("POST", "/shops/shop-12/delete", "admin", {"form": {}}),
    (
        "POST",
        "/users",
        "admin",
        {"form": {"username": "new-user", "password": "long enough 1", "role": "viewer"}},
    ),
    ("POST", "/users/viewer", "admin", {"form": {"role": "inspector", "active": "1"}}),
    ("POST", "/users/viewer/tokens", "admin", {"form": {"name": "t"}}),
    ("POST", "/users/viewer/password", "admin", {"form": {"password": "a new long password"}}),
    ("POST", "/users/viewer/tokens/1/revoke", "admin", {"form": {}}),
    ("POST", "/reminders/1/retry", "admin", {"form": {}}),
    ("PUT", "/api/v1/zones/node-a/cam-01", "admin", {"json": {"document": "camera_id: cam-01\nzones: []\n"}}),
    (
        "POST",
        "/api/v1/zones/node-a/cam-01/validate",
        "admin",
        {"json": {"document": "camera_id: cam-01\nzones: []\n"}},
    ),
]
ADMIN_PAGES = [
    "/audit",
    "/users",
    "/zones/node-a/cam-01",
    "/api/v1/exports/verdicts",
]
VIEWER_PAGES = [
    "/queue",
    "/reminders",
    "/shops",
    "/cameras",
    "/incidents/{iid}",
    "/api/v1/incidents",
    "/api/v1/shops",
    "/api/v1/changes",
    "/api/v1/incidents/{iid}",
]
RANK = {"viewer": 0, "inspector": 1, "admin": 2}


@pytest.fixture
def iid(feed: Feed) -> str:
    return feed.send(incident_message())


def call(client: TestClient, method: str, path: str, body: dict[str, object], csrf: str | None) -> int:
    headers = {}
    form = dict(body.get("form", {}))  # type: ignore[call-overload]
    if "json" in body and csrf is not None:
        headers["X-CSRF-Token"] = csrf
    elif "form" in body and csrf is not None:
        form["csrf_token"] = csrf
    elif csrf is not None:
        headers["X-CSRF-Token"] = csrf
    kwargs: dict[str, object] = {"headers": headers, "follow_redirects": False}
    if "json" in body:
        kwargs["json"] = body["json"]
    elif "form" in body:
        kwargs["data"] = form
    return client.request(method, path, **kwargs).status_code  # type: ignore[arg-type]


@pytest.mark.parametrize("user", ["viewer", "inspector", "admin"])
def test_roles_per_mutation(client: TestClient, server: ReviewServer, iid: str, user: str) -> None:
    csrf = login(client, user)
    for method, path, needed, body in MUTATIONS:
        status = call(client, method, path.format(iid=iid), body, csrf)
        if RANK[user] < RANK[needed]:
            assert status == 403, (user, method, path, status)
        else:
            assert status != 403 and status < 500, (user, method, path, status)


@pytest.mark.parametrize("user", ["viewer", "inspector", "admin"])
def test_roles_per_page(client: TestClient, iid: str, user: str) -> None:
    login(client, user)
    for path in VIEWER_PAGES:
        assert client.get(path.format(iid=iid)).status_code == 200, path
    for path in ADMIN_PAGES:
        expected = 200 if user == "admin" else 403
        assert client.get(path).status_code == expected, (user, path)


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
def test_mutations_need_the_session_csrf_token(
    client: TestClient, server: ReviewServer, iid: str, csrf: str | None
) -> None:
    login(client, "admin")
    for method, path, _needed, body in MUTATIONS:
        assert call(client, method, path.format(iid=iid), body, csrf) == 403, (method, path)
    # nothing happened
    db = server.store.read()
    assert db.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM shops").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 3


def test_another_sessions_csrf_token_is_refused(server: ReviewServer, iid: str) -> None:
    with (
        TestClient(server.app, base_url="https://testserver") as a,
        TestClient(server.app, base_url="https://testserver") as b,
    ):
        login(a, "inspector")
        token_b = login(b, "inspector")
        status = call(
            a, "POST", f"/api/v1/incidents/{iid}/verdict", {"json": {"verdict": "confirmed"}}, token_b
        )
        assert status == 403


def test_not_logged_in_mutations_are_refused(client: TestClient, iid: str) -> None:
    for method, path, _needed, body in MUTATIONS:
        status = call(client, method, path.format(iid=iid), body, "x")
        assert status in (303, 401), (method, path, status)


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2Fsecret.key",
        "%2Fetc%2Fpasswd",
        "....//....//etc/passwd",
        "x%00.jpg",
        "%2e%2e%2fsecret.key",
    ],
)
def test_evidence_names_cannot_escape(client: TestClient, iid: str, name: str) -> None:
    login(client, "viewer")
    assert client.get(f"/evidence/{name}").status_code == 404
    assert client.get(f"/snapshots/{name}/{name}").status_code == 404


def test_a_hostile_stored_path_is_not_followed(client: TestClient, feed: Feed, iid: str) -> None:
    login(client, "viewer")
    assert client.get(f"/evidence/{iid}").status_code == 200
    feed.db.execute("UPDATE incidents SET evidence_path = '../secret.key' WHERE incident_id = ?", [iid])
    assert client.get(f"/evidence/{iid}").status_code == 404
    feed.db.execute("UPDATE incidents SET evidence_path = '/etc/passwd' WHERE incident_id = ?", [iid])
    assert client.get(f"/evidence/{iid}").status_code == 404


def test_security_headers_on_pages(client: TestClient) -> None:
    login(client, "viewer")
    response = client.get("/queue")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_favicon_is_served(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
