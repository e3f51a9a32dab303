"""Real Mosquitto + Chromium: the edge reports the zones it runs, the editor starts from them, an
edit through the form reaches the YAML, the diff is confirmed, and the published config keeps
every field the form has no input for."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from review_ui import zone_versions
from review_ui.service import ReviewServer
from tests.review_ui.conftest import make_config
from tests.review_ui.mqtt_support import EdgeLike
from tests.review_ui.support import CAMERA, PASSWORD, PREFIX, T0, jpeg, wait_until
from tests.review_ui.test_browser_e2e import ARGS, CHROMIUM, SHOTS
from tests.review_ui.test_zone_editor_api import FULL
from tests.support.broker import MosquittoBroker, free_port
from tests.support.database import UsersTemplate
from uplink.messages import ConfigMessage, ZoneSource, ZonesReport, to_json
from zones.loader import parse_zone_document

playwright_api = pytest.importorskip("playwright.sync_api")
NODE = "node-zone-editor"  # its own node: the session broker keeps other tests' retained topics


@pytest.fixture
def server(tmp_path: Path, broker: MosquittoBroker, users_db: UsersTemplate) -> Iterator[ReviewServer]:
    port = free_port()
    config = make_config(
        tmp_path,
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        secure_cookies=False,
        mqtt={"host": broker.host, "port": broker.port, "client_id": "review-zone-editor"},
    )
    users_db.seed(config)
    built = ReviewServer(config)
    with built.running():
        assert built.ingest is not None and built.ingest.wait_subscribed(10)
        yield built


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_edit_the_zones_the_edge_runs_without_losing_fields(
    server: ReviewServer, broker: MosquittoBroker
) -> None:
    base = server.config.public_base_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    edge = EdgeLike(broker, "edge-zone-editor")
    edge.publish(f"{PREFIX}/{NODE}/{CAMERA}/snapshot", jpeg(640, 360, seed=3), retain=True)
    report = ZonesReport(
        node_id=NODE,
        camera_id=CAMERA,
        at=T0,
        sha256=hashlib.sha256(FULL.encode()).hexdigest(),
        source=ZoneSource.FILE,
        path="zones/demo.yaml",
        document=FULL,
    )
    edge.publish(f"{PREFIX}/{NODE}/{CAMERA}/zones", to_json(report), retain=True)
    wait_until(lambda: zone_versions.edge_zones(server.store.read(), NODE, CAMERA), 10, "the zones report")
    config_watch = EdgeLike(broker, "edge-zone-editor-config", subscribe=f"{PREFIX}/{NODE}/config")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{base}/queue")

        page.goto(f"{base}/zones/{NODE}/{CAMERA}")
        assert "已载入边缘设备的文件 zones/demo.yaml" in page.inner_text("#loaded-from")
        page.wait_for_selector("#editor[data-validation='ok']", timeout=10_000)
        assert page.input_value("#zone-yaml") == FULL
        assert page.locator("#zone-svg polygon.zone").count() == 2
        assert page.input_value("[data-field=id]") == "east-pavement"

        # A bad value typed into the YAML: the problem names zone and field, in Chinese, with its line.
        page.fill("#zone-yaml", FULL.replace("dwell_s: 10", "dwell_s: 0"))
        problem = page.wait_for_selector("#yaml-problems .problem.error", timeout=10_000)
        assert problem is not None
        assert (
            "第 14 行" in problem.inner_text()
            and "区域 east-pavement 的停留阈值(秒)不能小于 1" in problem.inner_text()
        )
        assert page.locator("#save-zones").is_disabled()
        page.screenshot(path=str(SHOTS / "zone-editor-yaml-problem.png"), full_page=True)

        # The form edits the text: the rest of the document stays as written.
        page.fill("#zone-yaml", FULL)
        page.wait_for_selector("#editor[data-validation='ok']", timeout=10_000)
        page.fill("[data-field=dwell_s]", "12")
        wait_until(lambda: "dwell_s: 12" in page.input_value("#zone-yaml"), 10, "the form edit in the YAML")
        page.wait_for_selector("#editor[data-validation='ok']", timeout=10_000)
        assert page.input_value("#zone-yaml") == FULL.replace("dwell_s: 10", "dwell_s: 12", 1)

        page.click("#save-zones")
        page.wait_for_selector("#diff-panel:not([hidden])", timeout=10_000)
        diff = page.inner_text("#diff")
        assert "-    dwell_s: 10" in diff and "+    dwell_s: 12" in diff and "-    cooldown_s" not in diff
        assert "对比边缘设备正在运行的版本" in page.inner_text("#diff-against")
        page.screenshot(path=str(SHOTS / "zone-editor-diff.png"), full_page=True)
        page.click("#publish-zones")
        page.wait_for_selector("#version", timeout=10_000)
        assert page.inner_text("#version") == "1"
        page.wait_for_selector("#history tr[data-version='1']", timeout=10_000)
        browser.close()
    config = ConfigMessage.model_validate_json(config_watch.next().payload)
    published = config.cameras[CAMERA]
    assert published == FULL.replace("dwell_s: 10", "dwell_s: 12", 1)  # comments and quotes too
    expected = parse_zone_document(FULL, "edge")
    zone = expected.zones[0].model_copy(update={"dwell_s": 12})
    assert parse_zone_document(published, "published") == expected.model_copy(
        update={"zones": (zone, *expected.zones[1:])}
    )
    config_watch.close()
    edge.close()
