"""The cameras & nodes page shows what the edge is doing: per-camera health and config rejections."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.capture import CameraState as CaptureState
from edge.node.config_sync import ConfigSync
from edge.node.status import CameraReading, health_probe
from review_ui.clock import ManualClock
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.support import CAMERA, NODE, PREFIX, T0, login, wait_until
from tests.support.broker import MosquittoBroker
from tests.support.database import UsersTemplate
from uplink.config_publish import publish_config
from uplink.messages import (
    CameraHealth,
    CameraState,
    CameraStatus,
    ConfigHealth,
    ConfigMessage,
    NodeHealth,
    NodeHealthV1,
    to_json,
)
from uplink.publisher import Publisher
from uplink.settings import MqttSettings
from zones.schema import ZoneFile

PROBLEM = "config v8 cameras[cam-01]:5: zones[0].polygon: a polygon needs at least 3 distinct points, got 2"
ZONES = """\
camera_id: cam-01
zones:
  - id: door-12
    kind: monitored
    polygon: {polygon}
    shop: {{id: shop-12, name: 东街12号}}
"""
GOOD_POLYGON = "[[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]"
BAD_POLYGON = "[[0.1, 0.5], [0.9, 0.5], [0.9, 0.5], [0.1, 0.5]]"


def _row(page: str, marker: str) -> str:
    """The table row that carries `marker` (a data- attribute), as text."""
    start = page.index(marker)
    return page[page.rindex("<tr", 0, start + len(marker)) : page.index("</tr>", start)]


def test_cameras_page_shows_camera_health_and_the_rejected_config(client: TestClient, feed: Feed) -> None:
    status = CameraStatus(
        node_id=NODE, camera_id=CAMERA, state=CameraState.STREAMING, at=T0, last_frame_at=T0
    )
    feed.raw(f"{PREFIX}/{NODE}/{CAMERA}/status", to_json(status))
    health = NodeHealth(
        node_id=NODE,
        at=T0 + timedelta(seconds=30),
        uptime_s=30.0,
        outbox_backlog=0,
        config_version=7,
        cameras=[
            CameraHealth(
                camera_id=CAMERA,
                state=CameraState.STREAMING,
                last_frame_at=T0 + timedelta(seconds=29),
                fps_analysed=0.98,
                incidents_open=2,
            ),
            CameraHealth(camera_id="cam-02", state=CameraState.OFFLINE, fps_analysed=0.0, incidents_open=0),
        ],
        config=ConfigHealth(
            applied_version=7, rejected_version=8, rejected_at=T0 + timedelta(seconds=20), problems=[PROBLEM]
        ),
    )
    feed.raw(f"{PREFIX}/{NODE}/health", to_json(health))
    login(client, "viewer")
    page = html.unescape(client.get("/cameras?lang=en").text)
    cam1 = _row(page, f'data-camera="{NODE}/{CAMERA}"')
    assert "streaming" in cam1 and "2026-05-01 10:00:29" in cam1  # health's later frame, Asia/Shanghai
    assert "0.98" in cam1 and '<td class="incidents-open">2</td>' in cam1
    cam2 = _row(page, f'data-camera="{NODE}/cam-02"')  # known from health only
    assert "offline" in cam2 and "0.00" in cam2
    node = _row(page, f'<tr data-node="{NODE}">')
    assert '<td class="config-version">7</td>' in node
    rejected = _row(page, f'<tr class="config-rejected" data-node="{NODE}">')
    assert "Config rejected by the node: Version 8" in rejected and PROBLEM in rejected

    # A node still on health/1: no per-camera figures, no rejection row, nothing breaks.
    old = NodeHealthV1(
        node_id=NODE, at=T0 + timedelta(seconds=60), uptime_s=60.0, outbox_backlog=0, config_version=7
    )
    feed.raw(f"{PREFIX}/{NODE}/health", to_json(old))
    page = html.unescape(client.get("/cameras?lang=en").text)
    assert "config-rejected" not in page
    assert '<td class="incidents-open">—</td>' in _row(page, f'data-camera="{NODE}/{CAMERA}"')


class _Camera:
    def __init__(self) -> None:
        self.versions: list[int | None] = []

    def replace_zones(self, zone_file: ZoneFile, version: int | None, document: object = None) -> None:
        self.versions.append(version)


@pytest.fixture
def live(tmp_path: Path, own_broker: MosquittoBroker, users_db: UsersTemplate) -> Iterator[ReviewServer]:
    config = make_config(
        tmp_path, mqtt={"host": own_broker.host, "port": own_broker.port, "client_id": "review-cameras"}
    )
    users_db.seed(config)
    server = ReviewServer(config, clock=ManualClock(T0))
    server.start_background()
    assert server.ingest is not None and server.ingest.wait_subscribed(10)
    yield server
    server.stop_background()


def test_invalid_retained_config_shows_as_rejected_on_the_page_and_last_good_stays(
    live: ReviewServer, own_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Real broker, real ingest, the edge's ConfigSync and Publisher: the whole report path."""
    camera = _Camera()
    sync = ConfigSync(NODE, {CAMERA: camera}, tmp_path / "edge-config.json")

    def readings() -> dict[str, CameraReading]:
        return {CAMERA: CameraReading(CaptureState.STREAMING, time.monotonic() - 0.5, 1.0, 1)}

    settings = MqttSettings.model_validate(
        {"host": own_broker.host, "port": own_broker.port, "client_id": NODE}
    )
    publisher = Publisher(
        settings,
        tmp_path / "edge.sqlite",
        health_interval_s=0.2,
        health_probe=health_probe(sync, "test", readings),
        on_config=sync.on_config,
        on_config_rejected=sync.on_rejected,
    )
    review = MqttSettings.model_validate(
        {"host": own_broker.host, "port": own_broker.port, "client_id": "review-publisher"}
    )

    def config(version: int, polygon: str) -> ConfigMessage:
        document = ZONES.format(polygon=polygon)
        return ConfigMessage(
            node_id=NODE, version=version, issued_at=datetime.now(UTC), cameras={CAMERA: document}
        )

    publisher.start()
    try:
        assert publisher.wait_connected(10)
        with TestClient(live.app, base_url="https://testserver") as client:
            login(client, "viewer")

            def page() -> str:
                return html.unescape(client.get("/cameras?lang=en").text)

            publish_config(review, NODE, config(1, GOOD_POLYGON))
            wait_until(lambda: '<td class="config-version">1</td>' in page(), 10, "version 1 applied")
            publish_config(review, NODE, config(2, BAD_POLYGON))  # retained, like every config
            wait_until(lambda: "config-rejected" in page(), 10, "the rejection on the page")
            rejected = _row(page(), f'<tr class="config-rejected" data-node="{NODE}">')
            assert "Version 2" in rejected
            assert "config v2 cameras[cam-01]:5: zones[0].polygon: " in rejected, rejected
            node = _row(page(), f'<tr data-node="{NODE}">')
            assert '<td class="config-version">1</td>' in node, "the last good config stays applied"
            assert sync.applied_version == 1 and camera.versions == [1]
            cam = _row(page(), f'data-camera="{NODE}/{CAMERA}"')
            assert "streaming" in cam and "1.00" in cam and '<td class="incidents-open">1</td>' in cam
    finally:
        publisher.stop(2.0)


def test_a_tamper_alarm_from_the_scene_model_shows_in_both_languages(client: TestClient, feed: Feed) -> None:
    from uplink.messages import SceneView

    status = CameraStatus(
        node_id=NODE, camera_id=CAMERA, state=CameraState.STREAMING, at=T0, view=SceneView.OBSTRUCTED
    )
    feed.raw(f"{PREFIX}/{NODE}/{CAMERA}/status", to_json(status))
    health = NodeHealth(
        node_id=NODE,
        at=T0,
        uptime_s=3.0,
        outbox_backlog=0,
        cameras=[
            CameraHealth(
                camera_id="cam-02",
                state=CameraState.STREAMING,
                fps_analysed=0.5,
                incidents_open=1,
                view=SceneView.WATCHING,
                static_regions=2,
            )
        ],
    )
    feed.raw(f"{PREFIX}/{NODE}/health", to_json(health))
    login(client, "viewer")
    english = html.unescape(client.get("/cameras?lang=en").text)
    assert "camera blocked or covered" in _row(english, f'data-camera="{NODE}/{CAMERA}"')
    assert 'class="alarm"' in _row(english, f'data-camera="{NODE}/{CAMERA}"')
    assert "2 static objects" in _row(english, f'data-camera="{NODE}/cam-02"')
    chinese = html.unescape(client.get("/cameras?lang=zh-CN").text)
    assert "摄像头被遮挡" in _row(chinese, f'data-camera="{NODE}/{CAMERA}"')
    assert "监测中" in _row(chinese, f'data-camera="{NODE}/cam-02"')


def test_the_events_a_node_still_waits_to_hear_are_stored_show_with_their_age(
    client: TestClient, feed: Feed
) -> None:
    health = NodeHealth(
        node_id=NODE, at=T0, uptime_s=3.0, outbox_backlog=0, outbox_unacked=12, oldest_unacked_s=95.4
    )
    feed.raw(f"{PREFIX}/{NODE}/health", to_json(health))
    login(client, "viewer")
    page = html.unescape(client.get("/cameras?lang=en").text)
    assert '<td class="unacked">12 (95 s)</td>' in _row(page, f'<tr data-node="{NODE}">')
