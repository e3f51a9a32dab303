"""Fixture proposals from rejections and calibration suggestions from the verdict history."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from review_ui.calibration import suggestions
from review_ui.clock import ManualClock
from review_ui.proposals import ProposalError, pending, with_fixtures
from review_ui.review import ClearedAction, RejectReason, Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed
from tests.review_ui.support import CAMERA, NODE, T0, incident_message, login
from uplink.messages import DetectedObject, IncidentEventKind
from zones.loader import parse_zone_document

DOC = """# east street, drawn 2026-05-01
camera_id: cam-01
zones:
  - id: door-12-sidewalk
    kind: monitored
    shop: {id: shop-12, name: 东街12号}
    polygon: [[0.0, 0.4], [1.0, 0.4], [1.0, 1.0], [0.0, 1.0]]
    min_confidence: 0.35   # as surveyed
"""


def test_a_fixture_goes_into_its_zone_and_the_rest_stays_as_written() -> None:
    text = with_fixtures(
        DOC, "door-12-sidewalk", [{"class": "chair", "box": [0.1, 0.5, 0.3, 0.9]}], "incident x"
    )
    assert (
        text.startswith("# east street, drawn 2026-05-01\n")
        and "min_confidence: 0.35   # as surveyed" in text
    )
    zone = parse_zone_document(text, "new").zones[0]
    assert [(f.class_name, f.box, f.tolerance, f.name) for f in zone.fixtures] == [
        ("chair", (0.1, 0.5, 0.3, 0.9), 0.3, "incident x")
    ]
    with pytest.raises(ProposalError) as gone:
        with_fixtures(DOC, "no-such-zone", [{"class": "chair", "box": [0.1, 0.5, 0.3, 0.9]}], "x")
    assert gone.value.key == "proposal_zone_gone"


def test_propose_accept_dismiss_through_the_pages(
    client: TestClient, server: ReviewServer, feed: Feed
) -> None:
    server.zones.save(NODE, CAMERA, DOC, "admin")
    objects = [DetectedObject(label="chair", confidence=0.8, bbox=(0.1, 0.5, 0.3, 0.9))]
    first = feed.send(incident_message(objects=objects))
    second = feed.send(incident_message(objects=objects, label="bench"))
    csrf = login(client, "inspector")
    for iid in (first, second):
        response = client.post(
            f"/api/v1/incidents/{iid}/verdict",
            json={"verdict": "rejected", "reason": "permitted", "propose_fixture": True},
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status_code == 200, response.text
    proposals = pending(server.store.read(), NODE, CAMERA)
    assert [p["incident_id"] for p in proposals] == [first, second] and proposals[0]["reason"] == "permitted"
    # An inspector may propose, only an admin decides.
    assert (
        client.post(
            f"/zones/{NODE}/{CAMERA}/proposals/{proposals[0]['id']}/accept", data={"csrf_token": csrf}
        ).status_code
        == 403
    )
    csrf = login(client, "admin")
    page = client.get(f"/zones/{NODE}/{CAMERA}?lang=zh-CN").text
    assert "建议的固定设施" in page and page.count("data-proposal=") == 2
    accept = f"/zones/{NODE}/{CAMERA}/proposals/{proposals[0]['id']}/accept"
    assert client.post(accept, data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert client.post(accept, data={"csrf_token": csrf}).status_code == 409  # decided already
    dismiss = f"/zones/{NODE}/{CAMERA}/proposals/{proposals[1]['id']}/dismiss"
    assert client.post(dismiss, data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert pending(server.store.read(), NODE, CAMERA) == []
    latest = server.zones.latest(NODE, CAMERA)
    assert latest is not None and latest["version"] == 2
    assert [f.class_name for f in parse_zone_document(latest["document"], "v2").zones[0].fixtures] == [
        "chair"
    ]
    actions = [
        r[0] for r in server.store.read().execute("SELECT what FROM audit_log WHERE what LIKE 'fixture.%'")
    ]
    assert actions == ["fixture.propose", "fixture.propose", "fixture.accept", "fixture.dismiss"]


def test_an_incident_without_a_box_cannot_be_proposed(
    client: TestClient, feed: Feed, server: ReviewServer
) -> None:
    iid = feed.send(incident_message(bbox=(0.0, 0.0, 0.0, 0.0)))
    csrf = login(client, "inspector")
    assert 'id="propose-fixture"' not in client.get(f"/incidents/{iid}").text
    response = client.post(
        f"/api/v1/incidents/{iid}/verdict",
        json={"verdict": "rejected", "reason": "other", "propose_fixture": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 422
    assert (
        server.store.read().execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0
    )  # nothing half done


def test_calibration_suggests_what_keeps_every_confirmed_one(
    server: ReviewServer, feed: Feed, clock: ManualClock
) -> None:
    # (confidence, seconds the object stayed, verdict)
    history = [
        (0.81, 400, Verdict.CONFIRMED),
        (0.62, 300, Verdict.CONFIRMED),
        (0.555, 250, Verdict.CONFIRMED),
        (0.40, 70, Verdict.REJECTED),
        (0.58, 90, Verdict.REJECTED),
        (0.36, 500, Verdict.REJECTED),
    ]
    for confidence, stayed, verdict in history:
        iid = uuid.uuid4()
        feed.send(incident_message(iid, confidence=confidence))
        feed.send(
            incident_message(
                iid, 1, IncidentEventKind.CLEARED, confidence=confidence, at=T0 + timedelta(seconds=stayed)
            )
        )
        server.context.reviewer.give_verdict(
            str(iid),
            verdict,
            RejectReason.WRONG_OBJECT if verdict is Verdict.REJECTED else None,
            "",
            "inspector",
            cleared_action=ClearedAction.CLOSE,  # every one of them has left already
        )
    found = suggestions(
        server.store.read(),
        NODE,
        CAMERA,
        {"door-12-sidewalk": {"min_confidence": 0.35, "dwell_s": 60.0}},
        clock.now(),
    )
    by_field = {s.field: s for s in found}
    assert by_field["min_confidence"].suggested == 0.55  # floor of 0.555: that one is still kept
    assert (by_field["min_confidence"].rejected_dropped, by_field["min_confidence"].rejected) == (2, 3)
    assert by_field["dwell_s"].suggested == 250.0 and by_field["dwell_s"].rejected_dropped == 2
    assert (
        suggestions(
            server.store.read(),
            NODE,
            CAMERA,
            {"other-zone": {"min_confidence": 0.3, "dwell_s": 60.0}},
            clock.now(),
        )
        == []
    )
