"""Every page in real Chromium, in zh-CN and en, on a desktop and on a phone.

Each page is checked for what an inspector would notice first: the page scrolling sideways,
a string in the other language, a raw ISO timestamp, a script error. Data (ids, shop names,
user names, addresses) is marked `translate="no"` or carries its own `lang`, and is skipped;
everything else a person reads must be in the page's language. A screenshot of every
combination lands in artifacts/screenshots/pages/ for a human look.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from review_ui.clock import ManualClock
from review_ui.review import RejectReason, Verdict
from review_ui.service import ReviewServer
from review_ui.shops import ShopIn
from tests.conftest import ROOT
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.evidence_support import leuven_incident
from tests.review_ui.support import CAMERA, NODE, PASSWORD, PREFIX, T0, incident_message, jpeg
from tests.support.broker import free_port
from tests.support.database import UsersTemplate
from uplink.messages import (
    CameraHealth,
    CameraState,
    CameraStatus,
    IncidentEventKind,
    NodeHealth,
    SceneView,
    to_json,
)

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots" / "pages"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
ZONE_DOC = """camera_id: cam-01
zones:
  - id: door-12-sidewalk
    name: 东街12号门前人行道
    kind: monitored
    shop: {id: shop-12, name: 东街12号便利店}
    polygon: [[0.1, 0.6], [0.9, 0.6], [0.95, 0.95], [0.05, 0.95]]
    dwell_s: 60
"""

# Run in the page: every text a person reads that is not marked as data, with its element.
VISIBLE_TEXT = """() => {
  const lang = document.documentElement.lang;
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest("script, style, textarea, svg, [translate=no]")) continue;
    const own = el.closest("[lang]");
    if (own && own.getAttribute("lang") !== lang) continue;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") continue;
    out.push([el.tagName.toLowerCase() + (el.id ? "#" + el.id : ""), text]);
  }
  for (const el of document.querySelectorAll("[placeholder], [title], [aria-label], img[alt]")) {
    if (el.closest("[translate=no]")) continue;
    for (const a of ["placeholder", "title", "aria-label", "alt"]) {
      if (el.getAttribute(a)) out.push([el.tagName.toLowerCase() + "@" + a, el.getAttribute(a)]);
    }
  }
  return out;
}"""
# Names of protocols, formats, keys, time zones and the product stay as they are in Chinese too.
LATIN_ALLOWED = {"MQTT", "Webhook", "API", "ID", "IP", "ZIP", "JPEG", "JSONL", "YAML", "CSV", "SMTP", "Enter"}
LATIN_ALLOWED |= {"CST", "UTC", "curbwatch"}


def foreign_words(text: str, locale: str) -> list[str]:
    import re

    if locale == "en":
        return re.findall(r"[\u4e00-\u9fff]+", text)
    words = re.findall(r"[A-Za-z]{2,}", text)
    return [
        w for w in words if w not in LATIN_ALLOWED and not (len(w) == 1 or w in {"j", "k", "c", "r", "z"})
    ]


@pytest.fixture
def site(tmp_path: Path, users_db: UsersTemplate, leuven_jpg: Path) -> Iterator[dict[str, Any]]:
    """A review server on a real port with something on every page."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = make_config(
        tmp_path,
        port=port,
        public_base_url=base,
        secure_cookies=False,
        cases={"window_h": 24},
        reminders={"poll_s": 0.2, "undo_s": 30, "backoff_base_s": 5, "backoff_max_s": 60, "max_attempts": 3},
    )
    users_db.seed(config)
    clock = ManualClock(T0 + timedelta(minutes=20))
    server = ReviewServer(config, clock=clock)
    server.context.shops.create(
        ShopIn(
            id="shop-12",
            name="东街12号便利店",
            address="鼓楼区东街12号",
            operator="王老板",
            channel="email",  # type: ignore[arg-type]
            target="owner@shop.example",
            locale="zh-CN",  # type: ignore[arg-type]
        ),
        "admin",
    )
    server.zones.save(NODE, CAMERA, ZONE_DOC, "admin")
    feed = Feed(config)
    with server.running():
        # A case of three occurrences (real evidence on the newest), another shop's incident
        # that the edge already cleared, and one rejected.
        case = [
            feed.send(incident_message(first_seen_at=T0 + timedelta(minutes=m), at=T0 + timedelta(minutes=m)))
            for m in (0, 4)
        ]
        case.append(feed.send(leuven_incident(leuven_jpg)))
        cleared = uuid.uuid4()
        feed.send(incident_message(cleared, shop_id="shop-99", label="static object"))
        feed.send(
            incident_message(cleared, 1, IncidentEventKind.CLEARED, shop_id="shop-99", label="static object")
        )
        rejected = feed.send(incident_message(shop_id="shop-77", label="bench"))
        server.cases.run_once()
        server.context.reviewer.give_verdict(
            rejected, Verdict.REJECTED, RejectReason.PERMITTED, "许可摆放", "inspector"
        )
        status = CameraStatus(
            node_id=NODE, camera_id=CAMERA, state=CameraState.STREAMING, at=T0, last_frame_at=T0
        )
        feed.raw(f"{PREFIX}/{NODE}/{CAMERA}/status", to_json(status))
        feed.raw(f"{PREFIX}/{NODE}/{CAMERA}/snapshot", jpeg(640, 360, seed=3))
        health = NodeHealth(
            node_id=NODE,
            at=T0 + timedelta(minutes=1),
            uptime_s=60,
            outbox_backlog=0,
            config_version=1,
            cameras=[
                CameraHealth(
                    camera_id=CAMERA,
                    state=CameraState.STREAMING,
                    view=SceneView.WATCHING,
                    fps_analysed=1.0,
                    incidents_open=1,
                )
            ],
        )
        feed.raw(f"{PREFIX}/{NODE}/health", to_json(health))
        yield {"base": base, "server": server, "case": case, "cleared": str(cleared), "rejected": rejected}
        feed.db.close()


def pages(site: dict[str, Any]) -> dict[str, str]:
    return {
        "queue": "/queue",
        "queue-all": "/queue?status=",
        "dashboard": "/dashboard?period=30d",
        "dashboard-report": "/dashboard?period=30d&report=1",
        "incident-case": f"/incidents/{site['case'][-1]}",
        "incident-cleared": f"/incidents/{site['cleared']}",
        "incident-rejected": f"/incidents/{site['rejected']}",
        "reminders": "/reminders",
        "shops": "/shops",
        "cameras": "/cameras",
        "zone-editor": f"/zones/{NODE}/{CAMERA}",
        "audit": "/audit",
        "users": "/users",
        "account": "/account/password",
    }


def check_page(page: Any, url: str, locale: str, errors: list[str]) -> list[str]:
    """What is wrong with the page at url: overflow, foreign words, raw timestamps, script errors."""
    import re

    errors.clear()
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    found: list[str] = []
    if response is None or response.status != 200:
        found.append(f"HTTP {response.status if response else 'none'}")
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        found.append(f"scrolls sideways: {widths[0]} px of content in {widths[1]} px")
    for where, text in page.evaluate(VISIBLE_TEXT):
        if re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text):
            found.append(f"raw timestamp in {where}: {text!r}")
        foreign = foreign_words(text, locale)
        if foreign:
            found.append(f"not {locale} in {where}: {text!r} ({', '.join(foreign)})")
    found.extend(f"console: {e}" for e in errors)
    return found


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_every_page_in_both_languages_on_desktop_and_phone(site: dict[str, Any]) -> None:
    base = site["base"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    errors: list[str] = []  # console errors of the page being checked (check_page clears it)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for device, viewport in VIEWPORTS.items():
            context = browser.new_context(viewport=viewport, has_touch=device == "phone")
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            for locale in ("zh-CN", "en"):
                page.goto(f"{base}/login?lang={locale}")
                found = check_page(page, f"{base}/login?lang={locale}", locale, errors)
                if found:
                    problems[f"login {locale} {device}"] = found
                page.screenshot(path=str(SHOTS / f"login-{locale}-{device}.png"), full_page=True)
                page.fill("input[name=username]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("#login-form button[type=submit]")
                page.wait_for_url(f"{base}/queue**")
                for name, path in pages(site).items():
                    joiner = "&" if "?" in path else "?"
                    found = check_page(page, f"{base}{path}{joiner}lang={locale}", locale, errors)
                    if found:
                        problems[f"{name} {locale} {device}"] = found
                    page.screenshot(path=str(SHOTS / f"{name}-{locale}-{device}.png"), full_page=True)
                page.context.clear_cookies()
            context.close()
        browser.close()
    assert problems == {}, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in problems.items())
