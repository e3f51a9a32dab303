"""End to end in real Chromium: MQTT incident -> live queue -> confirm -> SMTP; zone editor -> config."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from review_ui.service import ReviewServer
from tests.conftest import ROOT
from tests.review_ui.conftest import make_config
from tests.review_ui.mqtt_support import EdgeLike
from tests.review_ui.support import (
    CAMERA,
    NODE,
    PASSWORD,
    PREFIX,
    T0,
    Inbox,
    incident_message,
    jpeg,
    wait_until,
)
from tests.support.broker import MosquittoBroker, free_port
from tests.support.database import UsersTemplate
from uplink.messages import ConfigMessage, NodeHealth, to_json
from zones.yaml_source import parse_text

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def stack(
    tmp_path: Path, broker: MosquittoBroker, users_db: UsersTemplate
) -> Iterator[tuple[ReviewServer, Inbox]]:
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    port = free_port()
    config = make_config(
        tmp_path,
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        secure_cookies=False,
        mqtt={"host": broker.host, "port": broker.port, "client_id": "review-e2e"},
        smtp={"host": "127.0.0.1", "port": smtp_port},
    )
    users_db.seed(config)
    server = ReviewServer(config)
    with server.running():
        assert server.ingest is not None and server.ingest.wait_subscribed(10)
        yield server, inbox
    smtp.stop()


def drag(page: Any, box: dict[str, float], start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag a vertex handle; points are fractions of the snapshot's size."""
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=4)
    page.mouse.up()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_review_loop_in_chromium(stack: tuple[ReviewServer, Inbox], broker: MosquittoBroker) -> None:
    server, inbox = stack
    base = server.config.public_base_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    edge = EdgeLike(broker, "edge-e2e")
    edge.publish(f"{PREFIX}/{NODE}/{CAMERA}/snapshot", jpeg(640, 360, seed=7), retain=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{base}/queue")
        assert "/login" in page.url
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{base}/queue")

        # register the shop through the admin form
        page.goto(f"{base}/shops")
        page.fill("#shop-form input[name=id]", "shop-12")
        page.fill("#shop-form input[name=name]", "东街12号便利店")
        page.select_option("#shop-form select[name=channel]", "email")
        page.fill("#shop-form input[name=target]", "owner@shop.example")
        page.click("#shop-form button[type=submit]")
        page.wait_for_selector("text=owner@shop.example")

        # a second tab without EventSource: the queue falls back to polling
        polled = context.new_page()
        polled.add_init_script("delete window.EventSource;")
        polled.goto(f"{base}/queue")
        polled.wait_for_selector("#queue[data-live='poll']")
        page.goto(f"{base}/queue")
        page.wait_for_selector("text=暂无待审事件")
        page.wait_for_selector("#queue[data-live='sse']", timeout=10_000)
        message = incident_message()
        iid = str(message.incident_id)
        edge.publish(f"{PREFIX}/{NODE}/{CAMERA}/incident", to_json(message))
        row = page.wait_for_selector(f"li[data-incident='{iid}']", timeout=15_000)  # arrives without reload
        assert row is not None
        polled.wait_for_selector(f"li[data-incident='{iid}']", timeout=15_000)
        polled.close()
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert font.startswith('"Noto Sans CJK SC"') and "WenQuanYi Zen Hei" in font, font
        page.screenshot(path=str(SHOTS / "queue-live.png"), full_page=True)
        page.keyboard.press("c")
        page.wait_for_selector(f"li[data-incident='{iid}']", state="detached", timeout=10_000)
        wait_until(lambda: inbox.messages, 15, "the reminder mail")
        assert inbox.messages[0]["To"] == "owner@shop.example"
        page.goto(f"{base}/incidents/{iid}")
        page.wait_for_selector("text=已发送", timeout=10_000)
        page.screenshot(path=str(SHOTS / "incident-reminded.png"), full_page=True)

        # zone editor: click four corners on the snapshot, fill the shop, save
        page.goto(f"{base}/zones/{NODE}/{CAMERA}")
        page.wait_for_selector("#snapshot")
        svg = page.locator("#zone-svg")
        box = svg.bounding_box()
        assert box is not None
        for fx, fy in ((0.1, 0.55), (0.9, 0.55), (0.95, 0.95), (0.05, 0.95)):
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        assert page.locator("ellipse.handle").count() == 4
        # drag the first point a little, delete the last one with a right-click, add it again
        page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.55 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + 0.12 * box["width"], box["y"] + 0.5 * box["height"], steps=4)
        page.mouse.up()
        page.locator("ellipse.handle").nth(3).click(button="right")
        assert page.locator("ellipse.handle").count() == 3
        page.mouse.click(box["x"] + 0.05 * box["width"], box["y"] + 0.95 * box["height"])
        page.fill("[data-field=id]", "door-12-sidewalk")
        page.fill("[data-field=shop_id]", "shop-12")
        page.fill("[data-field=shop_name]", "东街12号便利店")
        # live validation, without pressing Save: drag the first point below the bottom edge,
        # so the outline crosses itself -> the problem shows by the zone and Save is disabled
        save = page.locator("#save-zones")
        intersecting = "[data-problems-for=zone] .problem.error[data-key='zones[0].polygon']"
        page.wait_for_selector("#editor[data-validation='ok']", timeout=10_000)
        assert save.is_enabled()
        drag(page, box, (0.12, 0.5), (0.5, 0.99))
        page.wait_for_selector(intersecting, timeout=10_000)
        assert "边界自相交" in page.inner_text(intersecting)  # in the page's language, not GEOS text
        assert save.is_disabled()
        assert "invalid" in (page.get_attribute("#zone-svg polygon.zone", "class") or "")
        page.screenshot(path=str(SHOTS / "zone-editor-live-problem.png"), full_page=True)
        drag(page, box, (0.5, 0.99), (0.12, 0.5))
        page.wait_for_selector(intersecting, state="detached", timeout=10_000)
        page.wait_for_selector("#editor[data-validation='ok']", timeout=10_000)
        assert save.is_enabled()
        assert page.locator("#editor .problem").count() == 0
        config_watch = EdgeLike(broker, "edge-e2e-config", subscribe=f"{PREFIX}/{NODE}/config")
        page.click("#save-zones")
        page.wait_for_selector("#diff-panel:not([hidden])", timeout=10_000)  # confirm what changes
        page.click("#publish-zones")
        page.wait_for_selector("#version", timeout=10_000)
        assert page.inner_text("#version") == "1"
        config = ConfigMessage.model_validate_json(config_watch.next().payload)
        zone = parse_text(config.cameras[CAMERA], "published").data["zones"][0]  # YAML, as the editor writes
        assert zone["id"] == "door-12-sidewalk" and len(zone["polygon"]) == 4
        assert zone["polygon"][0][1] == pytest.approx(0.5, abs=0.02)
        page.screenshot(path=str(SHOTS / "zone-editor-saved.png"), full_page=True)
        health = NodeHealth(
            node_id=NODE, at=T0 + timedelta(seconds=1), uptime_s=1, outbox_backlog=0, config_version=1
        )
        edge.publish(f"{PREFIX}/{NODE}/health", to_json(health), retain=True)
        page.wait_for_selector("#applied.applied", timeout=15_000)
        page.screenshot(path=str(SHOTS / "zone-editor-applied.png"), full_page=True)
        browser.close()
    config_watch.close()
    edge.close()
