"""The reminder's evidence link: signed, expiring, this incident's image only, no login."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from review_ui.clock import ManualClock
from review_ui.evidence_links import EvidenceLinks, LinkCheck
from review_ui.review import Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed
from tests.review_ui.support import T0, Inbox, incident_message
from tests.review_ui.test_reminders import add_shop, build
from tests.support.database import UsersTemplate

LINK = re.compile(r"https://review\.example(/e/[^\s]+)")


def link_from_mail(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, smtp: tuple[Inbox, int]
) -> tuple[ReviewServer, Feed, str, str, str]:
    inbox, port = smtp
    server = build(tmp_path, clock, users_db, smtp={"host": "127.0.0.1", "port": port})
    feed = Feed(server.config)
    iid = feed.send(incident_message())
    other = feed.send(incident_message(shop_id="shop-99"))
    add_shop(server, "email", "owner@shop.example")
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    assert server.dispatcher.run_once() == 1
    body = inbox.messages[0].get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index,union-attr]
    found = LINK.search(body)
    assert found, body
    return server, feed, iid, other, found.group(1)


def test_the_mailed_link_opens_the_evidence_without_login_until_it_expires(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, smtp: tuple[Inbox, int]
) -> None:
    server, feed, iid, other, path = link_from_mail(tmp_path, clock, users_db, smtp)
    jpeg_on_disk = (
        server.config.evidence_dir
        / feed.db.execute("SELECT evidence_path FROM incidents WHERE incident_id = ?", [iid]).fetchone()[0]
    ).read_bytes()
    query = parse_qs(urlsplit(path).query)
    exp, sig = query["exp"][0], query["sig"][0]
    with TestClient(server.app, base_url="https://testserver") as anonymous:
        response = anonymous.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.content == jpeg_on_disk
        assert response.headers["referrer-policy"] == "no-referrer"
        # the login-protected evidence route still wants a login
        assert anonymous.get(f"/evidence/{iid}", follow_redirects=False).status_code == 303
        tampered = [
            f"/e/{other}?exp={exp}&sig={sig}",  # another incident with this signature
            f"/e/{iid}?exp={int(exp) + 3600}&sig={sig}",  # a later expiry
            f"/e/{iid}?exp={exp}&sig={sig[:-2]}{'00' if sig[-2:] != '00' else '11'}",
            f"/e/{iid}?exp={exp}",
            f"/e/{iid}?exp=-1&sig={sig}",
            f"/e/{iid}",
        ]
        for url in tampered:
            assert anonymous.get(url).status_code == 403, url
        clock.advance(server.links.ttl.total_seconds() + 1)
        expired = anonymous.get(path)
        assert expired.status_code == 403 and b"\xff\xd8" not in expired.content[:2]
    feed.db.close()
    server.store.close()


def test_a_valid_link_to_an_incident_without_evidence_is_404(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate
) -> None:
    server = build(tmp_path, clock, users_db)
    feed = Feed(server.config)
    bare = feed.send(incident_message(evidence=False))
    with TestClient(server.app, base_url="https://testserver") as anonymous:
        for incident_id in (bare, "no-such-incident"):
            url = server.links.url(incident_id).removeprefix("https://review.example")
            assert anonymous.get(url).status_code == 404, incident_id
    feed.db.close()
    server.store.close()


@pytest.mark.parametrize(
    ("exp_delta_s", "sig_ok", "expected"),
    [
        (60, True, LinkCheck.VALID),
        (0, True, LinkCheck.EXPIRED),
        (-60, True, LinkCheck.EXPIRED),
        (60, False, LinkCheck.BAD_SIGNATURE),
        (-60, False, LinkCheck.BAD_SIGNATURE),
    ],
)
def test_link_check(exp_delta_s: int, sig_ok: bool, expected: LinkCheck) -> None:
    links = EvidenceLinks(b"0123456789abcdef", "https://x", ManualClock(T0), ttl_h=1)
    exp = int(T0.timestamp()) + exp_delta_s
    sig = (
        links.signature("iid", exp)
        if sig_ok
        else EvidenceLinks(b"another-secret-key", "https://x", ManualClock(T0), ttl_h=1).signature("iid", exp)
    )
    assert links.check("iid", str(exp), sig) is expected
