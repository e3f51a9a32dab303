""" "Don't flag this here again", end to end on real footage.

The bicycles stand in zone door-a of vtest.avi; the edge pipeline (NanoDet, tracker, zones,
incidents) opens an incident; it goes through the review server's ingest; an inspector rejects
it as permitted and proposes a fixture; an admin accepts the proposal on the zone editor, which
publishes zone version 2; the same footage through the pipeline with version 2 opens nothing.
The edge applying a published version live is tested in tests/edge/node (ConfigSync); here the
published document itself is replayed, which is what the edge would run.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.analyze.run import AnalyzePipeline
from edge.incidents.types import IncidentEvent, IncidentEventKind
from models.detector import Detector
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from review_ui.clock import ManualClock
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.support import T0, incident_message, login
from tests.scenarios.cases import IN_ZONE_A, SAMPLE_FPS, START, Case, placements_for, zone_file_for
from tests.scenarios.footage import vtest_frames
from tests.support.database import UsersTemplate
from uplink.messages import DetectedObject, Shop
from zones.loader import load_zone_file, parse_zone_document
from zones.schema import ZoneFile

pytestmark = pytest.mark.slow
STANDING = Case("bicycles stand in door-a", ((IN_ZONE_A, 5.0, 75.0),))


def opened(detector: Detector, zone_file: ZoneFile, vtest_avi: Path, leuven_jpg: Path) -> list[IncidentEvent]:
    pipeline = AnalyzePipeline(detector, zone_file, START)
    frames = vtest_frames(vtest_avi, SAMPLE_FPS, placements_for(STANDING, leuven_jpg))
    return [e for e in pipeline.run(frames) if e.event is IncidentEventKind.OPENED]


def test_a_rejected_fixture_is_not_flagged_again(
    vtest_avi: Path, leuven_jpg: Path, tmp_path: Path, users_db: UsersTemplate
) -> None:
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, threads=1)
    zone_path = zone_file_for(STANDING, tmp_path)
    zone_file = load_zone_file(zone_path)
    first = opened(detector, zone_file, vtest_avi, leuven_jpg)
    assert [e.zone_id for e in first] == ["door-a"]
    event = first[0]

    config = make_config(tmp_path)
    users_db.seed(config)
    server = ReviewServer(config, clock=ManualClock(T0))
    server.zones.save("node-a", zone_file.camera_id, zone_path.read_text("utf-8"), "admin")  # version 1
    feed = Feed(config)
    primary = event.primary
    assert primary is not None
    message = incident_message(
        uuid.UUID(event.incident_id),
        camera_id=zone_file.camera_id,
        zone_id=event.zone_id,
        shop=Shop(id="shop-a", name="Shop A"),
        label=primary.label,
        confidence=primary.confidence,
        bbox=primary.bbox,
        objects=[DetectedObject(label=o.label, confidence=o.confidence, bbox=o.bbox) for o in event.objects],
    )
    iid = feed.send(message)
    with TestClient(server.app, base_url="https://testserver") as client:
        csrf = login(client, "inspector")
        page = client.get(f"/incidents/{iid}").text
        assert 'id="propose-fixture"' in page
        rejected = client.post(
            f"/incidents/{iid}/verdict",
            data={"verdict": "rejected", "reason": "permitted", "propose_fixture": "1", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert rejected.status_code == 303
        csrf = login(client, "admin")
        editor = client.get(f"/zones/node-a/{zone_file.camera_id}?lang=en").text
        proposal = editor.split('data-proposal="')[1].split('"')[0]
        accepted = client.post(
            f"/zones/node-a/{zone_file.camera_id}/proposals/{proposal}/accept",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert accepted.status_code == 303
        assert 'data-proposal="' not in client.get(f"/zones/node-a/{zone_file.camera_id}").text
    latest = server.zones.latest("node-a", zone_file.camera_id)
    assert latest is not None and latest["version"] == 2
    published = parse_zone_document(latest["document"], "v2")
    fixtures = next(z for z in published.zones if z.id == "door-a").fixtures
    assert {f.class_name for f in fixtures} == {o.label for o in event.objects}
    assert (
        "door-b" in latest["document"] and "update_every_s: 30" in latest["document"]
    )  # the rest as written

    assert opened(detector, published, vtest_avi, leuven_jpg) == []
    feed.db.close()
    server.store.close()
