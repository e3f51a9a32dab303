"""Live validation for the zone editor: POST /api/v1/zones/{node}/{camera}/validate.

The same checks as saving, but side-effect free: nothing stored, published or audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from review_ui.service import ReviewServer
from tests.review_ui.support import CAMERA, login
from uplink.messages import ConfigMessage

URL = f"/api/v1/zones/node-a/{CAMERA}/validate"
ZONE: dict[str, Any] = {
    "id": "door-12",
    "kind": "monitored",
    "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]],
    "shop": {"id": "shop-12", "name": "东街12号"},
}
VALID = {"camera_id": CAMERA, "zones": [ZONE]}
# The last two points swapped: the outline crosses itself (a bow tie).
BOW_TIE = {
    "camera_id": CAMERA,
    "zones": [dict(ZONE, polygon=[[0.1, 0.5], [0.9, 0.5], [0.1, 0.95], [0.9, 0.95]])],
}


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[ConfigMessage] = []

    def publish(self, message: ConfigMessage) -> None:
        self.sent.append(message)


@pytest.fixture
def publisher(server: ReviewServer) -> RecordingPublisher:
    recording = RecordingPublisher()
    server.zones.publisher = recording
    return recording


def body(document: object) -> dict[str, str]:
    return {"document": document if isinstance(document, str) else json.dumps(document)}


def counts(server: ReviewServer) -> tuple[int, int]:
    db = server.store.read()
    return (
        db.execute("SELECT count(*) FROM zone_configs").fetchone()[0],
        db.execute("SELECT count(*) FROM audit_log").fetchone()[0],
    )


def test_a_valid_document_has_no_problems(client: TestClient, as_admin: str) -> None:
    response = client.post(URL, json=body(VALID), headers={"X-CSRF-Token": as_admin})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["valid"], result["problems"], result["data"]) == (True, [], VALID)


def test_a_self_intersecting_polygon_is_an_error_at_its_key(client: TestClient, as_admin: str) -> None:
    response = client.post(URL, json=body(BOW_TIE), headers={"X-CSRF-Token": as_admin})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["valid"] is False
    [problem] = result["problems"]
    assert problem["key"] == "zones[0].polygon" and problem["severity"] == "error"
    assert "not simple" in problem["message"]
    assert set(problem) == {"key", "message", "severity", "line", "code", "text"}
    assert problem["code"] == "zone_problem_self_intersection"


def test_warnings_do_not_make_a_document_invalid(client: TestClient, as_admin: str) -> None:
    response = client.post(
        URL, json=body({"camera_id": CAMERA, "zones": []}), headers={"X-CSRF-Token": as_admin}
    )
    result = response.json()
    assert result["valid"] is True
    assert [(p["key"], p["severity"]) for p in result["problems"]] == [("zones", "warning")]


@pytest.mark.parametrize(
    ("document", "key"),
    [
        (dict(VALID, camera_id="cam-99"), "camera_id"),  # what the PUT refuses too
        ("zones: [", ""),  # not even YAML
        ({"camera_id": CAMERA, "zones": [dict(ZONE, dwell_s=0)]}, "zones[0].dwell_s"),
    ],
)
def test_the_checks_of_saving(client: TestClient, as_admin: str, document: object, key: str) -> None:
    result = client.post(URL, json=body(document), headers={"X-CSRF-Token": as_admin}).json()
    assert result["valid"] is False
    assert key in [p["key"] for p in result["problems"] if p["severity"] == "error"], result
    saved = client.put(URL.removesuffix("/validate"), json=body(document), headers={"X-CSRF-Token": as_admin})
    assert saved.status_code == 422


def test_a_bad_node_id_is_reported(client: TestClient, as_admin: str) -> None:
    response = client.post(
        f"/api/v1/zones/node%20a/{CAMERA}/validate", json=body(VALID), headers={"X-CSRF-Token": as_admin}
    )
    assert response.status_code == 200
    assert response.json()["valid"] is False


def test_validating_stores_publishes_and_audits_nothing(
    client: TestClient, server: ReviewServer, as_admin: str, publisher: RecordingPublisher
) -> None:
    before = counts(server)
    for document in (VALID, BOW_TIE, VALID):
        assert client.post(URL, json=body(document), headers={"X-CSRF-Token": as_admin}).status_code == 200
    assert counts(server) == before
    assert publisher.sent == []
    assert server.zones.latest("node-a", CAMERA) is None
    # whereas saving the same document does all three: the counts above could have moved
    put = client.put(URL.removesuffix("/validate"), json=body(VALID), headers={"X-CSRF-Token": as_admin})
    assert put.status_code == 200, put.text
    assert counts(server)[0] == before[0] + 1 and counts(server)[1] > before[1]
    assert len(publisher.sent) == 1


def test_not_logged_in_is_401(client: TestClient) -> None:
    response = client.post(URL, json=body(VALID), headers={"X-CSRF-Token": "x"}, follow_redirects=False)
    assert response.status_code == 401


@pytest.mark.parametrize("user", ["inspector", "viewer"])
def test_only_admins(client: TestClient, user: str) -> None:
    csrf = login(client, user)
    assert client.post(URL, json=body(VALID), headers={"X-CSRF-Token": csrf}).status_code == 403


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
def test_needs_the_session_csrf_token(client: TestClient, server: ReviewServer, csrf: str | None) -> None:
    login(client, "admin")
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    before = counts(server)
    assert client.post(URL, json=body(VALID), headers=headers).status_code == 403
    assert counts(server) == before


def test_a_bearer_token_needs_no_csrf(client: TestClient, server: ReviewServer) -> None:
    token = server.accounts.create_api_token("admin", "ci", "test")
    response = client.post(URL, json=body(BOW_TIE), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["valid"] is False


def test_a_deeply_nested_or_aliased_document_is_a_problem_not_a_500(
    client: TestClient, as_admin: str
) -> None:
    for document in ("[" * 100_000, "a: &a [1, 2]\nb: [*a, *a]\n"):
        response = client.post(URL, json=body(document), headers={"X-CSRF-Token": as_admin})
        assert response.status_code == 200, response.text
        assert response.json()["valid"] is False
        saved = client.put(
            URL.removesuffix("/validate"), json=body(document), headers={"X-CSRF-Token": as_admin}
        )
        assert 400 <= saved.status_code < 500, saved.text
