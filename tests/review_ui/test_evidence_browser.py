"""Real evidence in real Chromium: native size (never upscaled), no sideways scroll on a phone,
the overlay on the picture, a close-up from the legend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from review_ui.evidence_view import crop_box
from review_ui.service import ReviewServer
from tests.conftest import ROOT
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.evidence_support import LEUVEN_WH, leuven_incident
from tests.review_ui.support import PASSWORD
from tests.support.broker import free_port
from tests.support.database import UsersTemplate

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def wait_in_page(page: Any, expression: str, timeout_s: float = 10.0) -> None:
    """Poll `expression` from here: page.wait_for_function polls with eval inside the page,
    which the review UI's CSP (script-src 'self') refuses whenever it has to poll at all."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {expression}")
        time.sleep(0.05)


@pytest.fixture
def site(tmp_path: Path, users_db: UsersTemplate, leuven_jpg: Path) -> Iterator[tuple[str, str, Any]]:
    """A review server on a real port with one incident whose evidence the edge renderer drew."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = make_config(tmp_path, port=port, public_base_url=base, secure_cookies=False)
    users_db.seed(config)
    server = ReviewServer(config)
    message = leuven_incident(leuven_jpg)
    with server.running():
        feed = Feed(config)
        iid = feed.send(message)
        yield config.public_base_url, iid, message
        feed.db.close()


def log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{base}/queue")


def measure(page: Any) -> dict[str, float]:
    return page.evaluate(
        """() => {
        const img = document.getElementById('evidence');
        const r = img.getBoundingClientRect();
        const s = document.querySelector('.evidence-overlay').getBoundingClientRect();
        return {natural: img.naturalWidth, naturalH: img.naturalHeight, width: r.width, height: r.height,
                svgLeft: s.left - r.left, svgTop: s.top - r.top, svgWidth: s.width, svgHeight: s.height,
                scrollWidth: document.documentElement.scrollWidth,
                clientWidth: document.documentElement.clientWidth};
    }"""
    )


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_evidence_on_a_phone_and_on_a_desktop(site: tuple[str, str, Any]) -> None:
    base, iid, message = site
    width, height = LEUVEN_WH
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        phone = browser.new_context(
            locale="zh-CN", viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True
        )
        page = phone.new_page()
        log_in(page, base)
        page.goto(f"{base}/incidents/{iid}")
        wait_in_page(page, "document.getElementById('evidence').complete")
        m = measure(page)
        assert (m["natural"], m["naturalH"]) == (width, height)
        assert m["width"] < 390 and m["width"] <= m["natural"], m  # shrunk to fit, never stretched
        assert abs(m["height"] / m["width"] - height / width) < 0.01, m  # and not distorted
        assert m["scrollWidth"] <= m["clientWidth"], f"the page scrolls sideways: {m}"
        # The overlay covers the picture exactly, so its boxes sit on the burnt-in ones.
        assert abs(m["svgLeft"]) < 0.5 and abs(m["svgTop"]) < 0.5, m
        assert abs(m["svgWidth"] - m["width"]) < 0.5 and abs(m["svgHeight"] - m["height"]) < 0.5, m
        first = page.locator(".evidence-box[data-object='1'] rect").bounding_box()
        picture = page.locator("#evidence").bounding_box()
        assert first is not None and picture is not None
        x1, y1, x2, y2 = message.evidence_objects[0].bbox
        # Centres: the box's bounds include its stroke, which is as wide on both sides.
        centre_x, centre_y = first["x"] + first["width"] / 2, first["y"] + first["height"] / 2
        assert abs(centre_x - (picture["x"] + (x1 + x2) / 2 * picture["width"])) < 1
        assert abs(centre_y - (picture["y"] + (y1 + y2) / 2 * picture["height"])) < 1
        assert page.locator(".evidence-object").all_inner_texts()[0].split() == ["1", "自行车", "0.62"]
        page.screenshot(path=str(SHOTS / "evidence-phone.png"), full_page=True)

        # A tap on legend entry 2 opens its close-up, enlarged, inside the screen.
        page.locator(".evidence-object[data-object='2']").tap()
        page.wait_for_selector("#evidence-zoom[open]")
        wait_in_page(page, "document.getElementById('evidence-zoom-img').naturalWidth > 0")
        left, _, right, _ = crop_box(message.evidence_objects[1].bbox, LEUVEN_WH)
        zoom = page.evaluate(
            """() => { const i = document.getElementById('evidence-zoom-img');
            const r = i.getBoundingClientRect();
            return {natural: i.naturalWidth, width: r.width, right: r.right,
                    caption: document.getElementById('evidence-zoom-caption').textContent,
                    scrollWidth: document.documentElement.scrollWidth}; }"""
        )
        assert zoom["natural"] == right - left
        assert zoom["natural"] < zoom["width"] <= 390 and zoom["right"] <= 390, zoom
        assert zoom["caption"] == "2 椅子 0.45" and zoom["scrollWidth"] <= 390
        page.screenshot(path=str(SHOTS / "evidence-phone-zoom.png"))
        page.locator(".evidence-zoom-close").tap()
        page.wait_for_selector("#evidence-zoom", state="hidden")
        # The number keys open the close-ups too.
        page.keyboard.press("3")
        page.wait_for_selector("#evidence-zoom[open]")
        page.keyboard.press("Escape")
        page.wait_for_selector("#evidence-zoom", state="hidden")
        phone.close()

        desktop = browser.new_context(locale="en", viewport={"width": 1280, "height": 900})
        page = desktop.new_page()
        log_in(page, base)
        page.goto(f"{base}/incidents/{iid}")
        wait_in_page(page, "document.getElementById('evidence').complete")
        m = measure(page)
        assert m["width"] <= width, f"a {width} px picture shown {m['width']} px wide: upscaled"
        assert m["scrollWidth"] <= m["clientWidth"], m
        page.hover(".evidence-box[data-object='1']")
        assert "is-active" in (page.locator(".evidence-object[data-object='1']").get_attribute("class") or "")
        page.screenshot(path=str(SHOTS / "evidence-desktop.png"), full_page=True)
        browser.close()
