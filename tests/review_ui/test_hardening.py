"""Issue 10's web cases: strict numbers, a body limit before parsing, headers on every response,
and verdicts that do not fail while the ingest writes."""

from __future__ import annotations

import threading
import uuid

from fastapi.testclient import TestClient

from review_ui.config import ReviewConfig
from review_ui.service import ReviewServer
from review_ui.web.guard import DEFAULT_MAX_BODY_BYTES
from tests.review_ui.conftest import Feed
from tests.review_ui.support import incident_message, login


def test_unicode_digits_and_huge_numbers_are_ignored_not_500(client: TestClient, feed: Feed) -> None:
    iid = feed.send(incident_message())
    login(client, "admin")
    for url in ("/queue?page=²", "/queue?page=99999999999999999999", "/audit?before=²",
                "/audit?before=99999999999999999999"):  # fmt: skip
        assert client.get(url).status_code == 200, url
    client.cookies.clear()
    assert client.get(f"/e/{iid}?exp=²&sig=x").status_code in (403, 404)
    assert client.get(f"/e/{iid}?exp=99999999999999999999&sig=x").status_code in (403, 404)


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    big = b"{" + b" " * (DEFAULT_MAX_BODY_BYTES + 10) + b"}"
    response = client.post(
        "/api/v1/zones/n/c/validate", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["x-content-type-options"] == "nosniff"
    lying = client.post("/login", content=b"x", headers={"content-length": str(300 * 1024 * 1024)})
    assert lying.status_code == 413


def test_every_response_carries_nosniff_and_the_csp(client: TestClient, feed: Feed) -> None:
    iid = feed.send(incident_message())
    login(client, "viewer")
    for url in (f"/evidence/{iid}", "/api/v1/incidents", "/static/style.css", "/does-not-exist"):
        response = client.get(url)
        assert response.headers.get("x-content-type-options") == "nosniff", url
        assert "default-src 'self'" in response.headers.get("content-security-policy", ""), url


def test_verdicts_succeed_while_the_ingest_writes(
    server: ReviewServer, feed: Feed, config: ReviewConfig
) -> None:
    incidents = [feed.send(incident_message()) for _ in range(40)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest_busily() -> None:
        own = Feed(config)  # the ingest's own connection, in its own thread, as in production
        try:
            while not stop.is_set():
                own.send(incident_message(uuid.uuid4()))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.db.close()

    writer = threading.Thread(target=ingest_busily)
    writer.start()
    try:
        from review_ui.review import Verdict

        for iid in incidents:
            server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    finally:
        stop.set()
        writer.join(30)
    assert not errors
    marks = ",".join("?" * len(incidents))
    query = f"SELECT count(*) FROM verdicts WHERE incident_id IN ({marks})"
    done = server.store.read().execute(query, incidents).fetchone()[0]
    assert done == len(incidents)
