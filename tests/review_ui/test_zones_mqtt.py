"""Zone editor API with the real broker: validation, retained config, applied version via health."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from review_ui.clock import ManualClock
from review_ui.service import ReviewServer
from tests.review_ui.conftest import make_config
from tests.review_ui.mqtt_support import EdgeLike
from tests.review_ui.support import CAMERA, NODE, PREFIX, T0, incident_message, login, wait_until
from tests.support.broker import MosquittoBroker
from tests.support.database import UsersTemplate
from uplink.messages import ConfigMessage, NodeHealth, to_json

# Own node id: the session broker keeps retained health from other tests.
ZNODE = "node-zones"
ZONE = {
    "camera_id": CAMERA,
    "zones": [
        {
            "id": "door-12",
            "kind": "monitored",
            "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]],
            "shop": {"id": "shop-12", "name": "东街12号"},
            "classes": ["chair", "umbrella"],
            "dwell_s": 60,
        }
    ],
}


@pytest.fixture
def live(tmp_path: Path, broker: MosquittoBroker, users_db: UsersTemplate) -> Iterator[ReviewServer]:
    config = make_config(
        tmp_path,
        mqtt={"host": broker.host, "port": broker.port, "client_id": f"review-{tmp_path.name[-20:]}"},
    )
    users_db.seed(config)
    server = ReviewServer(config, clock=ManualClock(T0))
    server.start_background()
    assert server.ingest is not None and server.ingest.wait_subscribed(10)
    yield server
    server.stop_background()


def test_zone_save_publishes_retained_config_and_shows_applied(
    live: ReviewServer, broker: MosquittoBroker
) -> None:
    edge = EdgeLike(broker, "edge-node-a")
    with TestClient(live.app, base_url="https://testserver") as client:
        csrf = login(client, "admin")
        url = f"/api/v1/zones/{ZNODE}/{CAMERA}"
        bad = dict(ZONE, zones=[dict(ZONE["zones"][0], polygon=[[0.1, 0.1], [0.2, 0.2]])])  # type: ignore[arg-type]
        refused = client.put(url, json={"document": json.dumps(bad)}, headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 422
        problems = refused.json()["detail"]["problems"]
        assert any("polygon" in p["key"] for p in problems)
        wrong_cam = client.put(
            url, json={"document": json.dumps(dict(ZONE, camera_id="cam-99"))}, headers={"X-CSRF-Token": csrf}
        )
        assert wrong_cam.status_code == 422
        saved = client.put(url, json={"document": json.dumps(ZONE)}, headers={"X-CSRF-Token": csrf})
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == 1 and saved.json()["published"] is True
        # A node connecting later gets the retained config.
        late = EdgeLike(broker, "edge-node-a-late", subscribe=f"{PREFIX}/{ZNODE}/config")
        message = late.next()
        assert message.retain
        config = ConfigMessage.model_validate_json(message.payload)
        assert config.version == 1 and json.loads(config.cameras[CAMERA])["zones"][0]["id"] == "door-12"
        assert client.get(f"{url}/status").json()["applied"] is False
        health = NodeHealth(
            node_id=ZNODE, at=T0 + timedelta(seconds=5), uptime_s=5, outbox_backlog=0, config_version=1
        )
        edge.publish(f"{PREFIX}/{ZNODE}/health", to_json(health), retain=True)
        wait_until(lambda: client.get(f"{url}/status").json()["applied"], 10, "applied version")
        assert "door-12" in client.get(f"/zones/{ZNODE}/{CAMERA}").text
        whats = [r[0] for r in live.store.read().execute("SELECT what FROM audit_log")]
        assert "zones.save" in whats and "zones.publish" in whats
    late.close()
    edge.close()


def test_incident_over_mqtt_reaches_the_queue(live: ReviewServer, broker: MosquittoBroker) -> None:
    edge = EdgeLike(broker, "edge-node-a-2")
    message = incident_message()
    edge.publish(f"{PREFIX}/{NODE}/{CAMERA}/incident", to_json(message))
    with TestClient(live.app, base_url="https://testserver") as client:
        login(client, "viewer")
        wait_until(lambda: str(message.incident_id) in client.get("/queue").text, 10, "incident in queue")
    edge.close()
