"""The dashboard's figures against a history with known timings, made through the real paths.

Incidents come in through the ingest, verdicts through the reviewer, reminders leave through the
dispatcher to a real SMTP server and the loop checker closes them, each at a moment set on a
manual clock, so every percentile is known exactly (nearest-rank).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from review_ui.charts import duration, histogram
from review_ui.clock import ManualClock, iso
from review_ui.dashboard import Distribution
from review_ui.review import RejectReason, Verdict
from review_ui.service import ReviewServer
from review_ui.shops import ShopIn
from tests.review_ui.conftest import Feed
from tests.review_ui.support import CAMERA, NODE, PREFIX, T0, Inbox, incident_message, login
from tests.review_ui.test_reminders import build
from tests.support.database import UsersTemplate
from uplink.messages import CameraState, CameraStatus, IncidentEventKind, to_json

# (shop, seconds to the verdict, seconds from verdict to the reminder, seconds to clearing after it)
CONFIRMED = [
    ("shop-12", 30, 5, 60),
    ("shop-12", 60, 5, 120),
    ("shop-21", 90, 10, 300),
    ("shop-22", 120, 10, None),  # still out there
    ("shop-23", 600, 20, None),
]
REJECTED_AFTER_S = 45


@pytest.fixture
def history(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, smtp: tuple[Inbox, int]
) -> Iterator[tuple[ReviewServer, Feed]]:
    _inbox, port = smtp
    server = build(tmp_path, clock, users_db, smtp={"host": "127.0.0.1", "port": port})
    for shop in sorted({s for s, *_ in CONFIRMED}):
        server.context.shops.create(
            ShopIn(id=shop, name=f"商户 {shop}", channel="email", target=f"{shop}@shops.example"),  # type: ignore[arg-type]
            "admin",
        )
    feed = Feed(server.config)
    reviewer = server.context.reviewer
    for n, (shop, to_verdict, to_reminder, to_clear) in enumerate(CONFIRMED):
        opened = T0 + timedelta(hours=n)
        iid = uuid.UUID(feed.send(incident_message(shop_id=shop, first_seen_at=opened, at=opened)))
        clock._now = opened + timedelta(seconds=to_verdict)
        reviewer.give_verdict(str(iid), Verdict.CONFIRMED, None, "", "inspector")
        clock.advance(to_reminder)
        assert server.dispatcher.run_once() == 1
        if to_clear is not None:
            cleared = clock.now() + timedelta(seconds=to_clear)
            feed.send(
                incident_message(
                    iid, 1, IncidentEventKind.CLEARED, shop_id=shop, first_seen_at=opened, at=cleared
                )
            )
            clock._now = cleared + timedelta(seconds=1)
            server.dispatcher.run_once()
            from review_ui.reminders.dispatcher import LoopChecker

            LoopChecker(server.store, clock).run_once()
    opened = T0 + timedelta(hours=len(CONFIRMED))
    rejected = feed.send(incident_message(shop_id="shop-30", label="bench", first_seen_at=opened, at=opened))
    clock._now = opened + timedelta(seconds=REJECTED_AFTER_S)
    reviewer.give_verdict(rejected, Verdict.REJECTED, RejectReason.PERMITTED, "", "inspector")
    status = CameraStatus(node_id=NODE, camera_id="cam-02", state=CameraState.OFFLINE, at=T0)
    feed.raw(f"{PREFIX}/{NODE}/cam-02/status", to_json(status))
    clock._now = T0 + timedelta(hours=12)
    yield server, feed
    feed.db.close()
    server.store.close()


def test_distribution_percentiles_are_nearest_rank() -> None:
    d = Distribution((10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0))
    assert (d.p50, d.p90, d.p95, d.percentile(100)) == (50.0, 90.0, 100.0, 100.0)
    assert Distribution(()).p50 is None and Distribution(()).share_within(180) is None
    assert d.share_within(30) == 0.3
    assert d.histogram((0.0, 25.0, 60.0)) == [2, 3, 5]  # [0, 25), [25, 60), [60, ...)


def test_the_figures_of_a_known_history(history: tuple[ReviewServer, Feed]) -> None:
    server, _feed = history
    with TestClient(server.app, base_url="https://testserver") as client:
        login(client, "viewer")
        figures = client.get("/api/v1/dashboard", params={"from": "2026-05-01", "to": "2026-05-01"}).json()
    assert figures["counts"] == {
        "opened": 6,
        "pending": 0,
        "confirmed": 5,
        "rejected": 1,
        "reminded": 5,
        "rectified": 3,
        "escalated": 0,
    }
    loops = figures["loops"]
    # opened -> verdict: 30, 45, 60, 90, 120, 600
    assert (loops["opened_to_verdict"]["p50_s"], loops["opened_to_verdict"]["p90_s"]) == (60.0, 600.0)
    assert loops["opened_to_verdict"]["count"] == 6
    # verdict -> reminder: 5, 5, 10, 10, 20; opened -> reminder: 35, 65, 100, 130, 620
    assert (loops["verdict_to_reminder"]["p50_s"], loops["verdict_to_reminder"]["p95_s"]) == (10.0, 20.0)
    assert (loops["opened_to_reminder"]["p50_s"], loops["opened_to_reminder"]["p90_s"]) == (100.0, 620.0)
    assert loops["opened_to_reminder"]["within_target"] == pytest.approx(0.8)
    # reminder -> cleared, for the rectified three: 60, 120, 300
    assert loops["reminder_to_rectified"]["count"] == 3
    assert (loops["reminder_to_rectified"]["p50_s"], loops["reminder_to_rectified"]["p95_s"]) == (
        120.0,
        300.0,
    )
    assert figures["rejected_by_reason"] == {"permitted": 1}
    by_label = {row["key"]: row for row in figures["false_alarms"]["label"]}
    assert by_label["bench"]["rate"] == 1.0 and by_label["chair"] == {
        "key": "chair",
        "decided": 5,
        "rejected": 0,
        "rate": 0.0,
    }
    assert figures["false_alarms"]["camera"] == [{"key": CAMERA, "decided": 6, "rejected": 1, "rate": 1 / 6}]
    assert [(s["shop_id"], s["cases"]) for s in figures["repeat_offenders"]] == [("shop-12", 2)]
    assert [(c["camera_id"], c["why"]) for c in figures["cameras_attention"]] == [
        ("cam-02", ["camera_offline"])
    ]
    assert figures["deliveries"] == {"email": {"sent": 5}}


def test_filters_and_periods_narrow_the_figures(history: tuple[ReviewServer, Feed]) -> None:
    server, _feed = history
    with TestClient(server.app, base_url="https://testserver") as client:
        login(client, "viewer")
        shop = client.get("/api/v1/dashboard", params={"from": "2026-05-01", "shop": "shop-12"}).json()
        assert shop["counts"]["opened"] == 2 and shop["loops"]["opened_to_verdict"]["p95_s"] == 60.0
        # The clock is at T0 + 12 h: the last 24 hours hold everything, "today" (Asia/Shanghai) too.
        assert client.get("/api/v1/dashboard", params={"period": "24h"}).json()["counts"]["opened"] == 6
        assert (
            client.get("/api/v1/dashboard", params={"from": "2026-04-01", "to": "2026-04-30"}).json()[
                "counts"
            ]["opened"]
            == 0
        )
        assert (
            client.get("/api/v1/dashboard", params={"from": "2026-02-31"}).status_code == 200
        )  # no such day


def test_the_page_speaks_chinese_with_the_three_minute_line(history: tuple[ReviewServer, Feed]) -> None:
    server, _feed = history
    with TestClient(server.app, base_url="https://testserver") as client:
        login(client, "viewer")
        page = client.get("/dashboard?from=2026-05-01&lang=zh-CN").text
        assert "发现 → 发出提醒（闭环时长）" in page and 'class="target"' in page
        assert "80% 在 3 分钟内" in page and "1.7 分钟" in page  # opened -> reminder p50: 100 s
        assert "屡次违规商户" in page and "2 起" in page
        report = client.get("/dashboard?from=2026-05-01&report=1&lang=en").text
        assert "Report" in report and 'id="dashboard-filter"' not in report


def test_histogram_bars_put_the_target_line_at_three_minutes() -> None:
    d = Distribution((10.0, 35.0, 200.0, 4000.0))
    h = histogram(d, "en", 180.0)
    assert [b.count for b in h.bars if b.count] == [1, 1, 1, 1]
    assert h.target_x == pytest.approx(6 * h.width / len(h.bars))
    assert [b.over_target for b in h.bars][:7] == [False] * 6 + [True]
    assert (
        duration(45, "en") == "45 s"
        and duration(210, "zh-CN") == "3.5 分钟"
        and duration(7200, "en") == "2 h"
    )


def test_prometheus_metrics_give_the_same_loop_times(history: tuple[ReviewServer, Feed]) -> None:
    server, _feed = history
    server.clock._now = T0 + timedelta(hours=7)  # type: ignore[attr-defined]  # the last 24 h hold all six
    with TestClient(server.app, base_url="https://testserver") as client:
        token = server.accounts.create_api_token("viewer", "prometheus", "admin")
        text = client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {token}"}).text
        assert client.get("/api/v1/metrics").status_code == 401
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    key = (
        "curbwatch_review_loop_seconds",
        (("loop", "opened_to_reminder"), ("quantile", "0.5"), ("window", "24h")),
    )
    assert samples[key] == 100.0
    within = (
        "curbwatch_review_loop_within_target_ratio",
        (("loop", "opened_to_reminder"), ("window", "24h")),
    )
    assert samples[within] == pytest.approx(0.8)
    assert samples[("curbwatch_review_incidents", (("outcome", "rejected"), ("window", "24h")))] == 1


def test_inspector_notices_are_not_reminders_and_sms_receipts_are_counted(
    history: tuple[ReviewServer, Feed],
) -> None:
    server, _feed = history
    with server.store.write() as db:
        first = db.execute("SELECT id, incident_id, created_at FROM reminders ORDER BY id LIMIT 1").fetchone()
        # As the SMS receipt poller records a carrier report, and as the ladder's group notice
        # for a new incident is stored: sent before any verdict, to the inspectors, not the shop.
        db.execute("UPDATE reminders SET delivery = 'delivered' WHERE id = ?", [first[0]])
        db.execute(
            "INSERT INTO reminders (incident_id, shop_id, channel, target, locale, status, attempts,"
            " next_attempt_at, deadline_at, created_at, sent_at, step)"
            " VALUES (?, 'shop-12', 'wecom', 'inspectors', 'zh-CN', 'sent', 1, ?, '', ?, ?, 'new_incident')",
            [first[1], first[2], first[2], iso(T0)],
        )
    with TestClient(server.app, base_url="https://testserver") as client:
        login(client, "viewer")
        figures = client.get("/api/v1/dashboard", params={"from": "2026-05-01"}).json()
    assert figures["loops"]["opened_to_reminder"]["p50_s"] == 100.0  # the notice changed nothing
    assert figures["deliveries"]["email"] == {"sent": 5, "delivery_delivered": 1}
    assert figures["deliveries"]["wecom"] == {"sent": 1}
