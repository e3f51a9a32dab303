"""The escalation ladder through the real server: confirm -> SMS (Alibaba fake) -> receipt ->
second SMS -> DingTalk group -> case push; quiet hours and the per-shop SMS limit; Tencent SMS;
each step on the incident page and in the audit log."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from review_ui.clock import ManualClock
from review_ui.config import ReviewConfig
from review_ui.review import Verdict
from review_ui.service import ReviewServer
from review_ui.shops import ShopIn
from tests.review_ui import china_fakes
from tests.review_ui.china_fakes import FakeApi, serving
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.support import T0, incident_message, login
from tests.support.database import UsersTemplate
from uplink.messages import IncidentEventKind

HOUR = 3600.0
ALIYUN_ID, ALIYUN_SECRET = "LTAI-ladder", "ladder-aliyun-secret"
DING_TOKEN, DING_SECRET = "ding-token-1", "SEC" + "5e" * 30
CASE_TOKEN = "case-token-1"


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeApi]]:
    with (
        serving(FakeApi(china_fakes.AliyunSms(ALIYUN_ID, ALIYUN_SECRET))) as aliyun,
        serving(FakeApi(china_fakes.TencentSms("AKID-ladder", "ladder-tencent-key"))) as tencent,
        serving(FakeApi(china_fakes.DingTalkRobot(DING_TOKEN, DING_SECRET))) as dingtalk,
        serving(FakeApi(china_fakes.WeComRobot("wecom-key"))) as wecom,
        serving(FakeApi(china_fakes.CaseSystem(CASE_TOKEN))) as cases,
    ):
        yield {"aliyun": aliyun, "tencent": tencent, "dingtalk": dingtalk, "wecom": wecom, "cases": cases}


def secret_files(tmp_path: Path, fakes: dict[str, FakeApi]) -> dict[str, Path]:
    files = {
        "aliyun": json.dumps({"id": ALIYUN_ID, "secret": ALIYUN_SECRET}),
        "tencent": json.dumps({"id": "AKID-ladder", "secret": "ladder-tencent-key"}),
        "ding_url": f"{fakes['dingtalk'].url}/robot/send?access_token={DING_TOKEN}",
        "ding_secret": DING_SECRET,
        "wecom_url": f"{fakes['wecom'].url}/cgi-bin/webhook/send?key=wecom-key",
        "case_token": CASE_TOKEN,
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / "secrets" / name
        paths[name].parent.mkdir(exist_ok=True)
        paths[name].write_text(text + "\n")
    return paths


def ladder_config(
    tmp_path: Path, fakes: dict[str, FakeApi], provider: str = "aliyun", **sms: object
) -> ReviewConfig:
    files = secret_files(tmp_path, fakes)
    params = {"shop": "shop_name", "place": "place", "deadline": "deadline", "link": "evidence"}
    if provider == "tencent":
        params = {"1": "shop_name", "2": "deadline", "3": "evidence"}
    return make_config(
        tmp_path,
        sms={
            "provider": provider,
            "credentials_file": str(files[provider]),
            "sign_name": "鼓楼城管",
            "endpoint": fakes[provider].url + "/",
            "sdk_app_id": "1400787878",
            "templates": {"zh-CN": {"id": "SMS_465000001", "params": params}},
            "quiet_hours": None,
            **sms,
        },
        robots={
            "inspector_channel": "dingtalk",
            "dingtalk_url_file": str(files["ding_url"]),
            "dingtalk_secret_file": str(files["ding_secret"]),
        },
        case_push={"url": fakes["cases"].url + "/cases", "token_file": str(files["case_token"])},
        escalation={"second_reminder_after_h": 4, "inspector_group_after_h": 24, "case_push_after_h": 48},
    )


def start(config: ReviewConfig, users_db: UsersTemplate, clock: ManualClock) -> ReviewServer:
    users_db.seed(config)
    server = ReviewServer(config, clock=clock)
    server.context.shops.create(
        ShopIn.model_validate(
            {
                "id": "shop-12",
                "name": "东街12号便利店",
                "address": "鼓楼区东街12号",
                "channel": "sms",
                "target": "139 1234 5678",
            }
        ),
        "test",
    )
    return server


def tick(server: ReviewServer) -> None:
    """One pass of the reminder worker, in its order."""
    server.dispatcher.run_once()
    server.worker.checker.run_once()
    for task in server.worker.tasks:
        task.run_once()
    server.dispatcher.run_once()  # what the ladder queued leaves in the same pass


def rows(server: ReviewServer) -> list[tuple[object, ...]]:
    return (
        server.store.read()
        .execute("SELECT step, channel, target, status, provider_ref, delivery FROM reminders ORDER BY id")
        .fetchall()
    )


def test_the_whole_ladder_through_the_real_dispatcher(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, fakes: dict[str, FakeApi]
) -> None:
    server = start(ladder_config(tmp_path, fakes), users_db, clock)
    aliyun: china_fakes.AliyunSms = fakes["aliyun"].answer  # type: ignore[assignment]
    dingtalk: china_fakes.DingTalkRobot = fakes["dingtalk"].answer  # type: ignore[assignment]
    cases: china_fakes.CaseSystem = fakes["cases"].answer  # type: ignore[assignment]
    feed = Feed(server.config)
    iid = feed.send(incident_message())
    assert server.context.shops.get("shop-12")["target"] == "+8613912345678"  # type: ignore[index]

    tick(server)  # a new incident: the inspectors' group hears of it before any verdict
    assert rows(server) == [("new_incident", "dingtalk", "inspectors", "sent", None, None)]
    assert dingtalk.posts[0]["markdown"]["title"].startswith("新发现")

    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    tick(server)
    assert rows(server)[1] == ("reminder", "sms", "+8613912345678", "sent", "900001^0", None)
    assert aliyun.sent[0]["PhoneNumbers"] == "13912345678"
    assert json.loads(aliyun.sent[0]["TemplateParam"])["link"].startswith(f"https://review.example/e/{iid}?")

    clock.advance(61)  # the receipt poller asks after receipt_poll_s
    tick(server)
    assert rows(server)[1][5] == "delivered"

    clock.advance(4 * HOUR)
    tick(server)
    assert [r[0] for r in rows(server)] == ["new_incident", "reminder", "second_reminder"]
    assert rows(server)[2][3:5] == ("sent", "900002^0") and len(aliyun.sent) == 2

    clock.advance(20 * HOUR)  # 24 h after the first reminder: the inspectors' group
    tick(server)
    assert rows(server)[3][:4] == ("inspector_group", "dingtalk", "inspectors", "sent")
    overdue = dingtalk.posts[1]["markdown"]
    assert overdue["title"] == "逾期未整改：东街12号便利店" and f"/e/{iid}?" in overdue["text"]

    clock.advance(24 * HOUR)
    tick(server)
    assert rows(server)[4] == (
        "case_push",
        "case_push",
        fakes["cases"].url + "/cases",
        "sent",
        "GL-2026-000001",
        None,
    )
    assert cases.cases[iid]["case"]["external_id"] == iid
    clock.advance(24 * HOUR)
    tick(server)
    assert len(rows(server)) == 5  # each step once

    with TestClient(server.app, base_url="https://testserver") as client:
        login(client, "admin")
        page = client.get(f"/incidents/{iid}").text
        assert '案件编号 <span translate="no">GL-2026-000001</span>' in page
        assert page.count('data-step="') == 5 and "再次提醒" in page and "已送达手机" in page
        audit = client.get("/audit").text
    actions = [
        r[0] for r in server.store.read().execute("SELECT what FROM audit_log WHERE target = ?", [iid])
    ]
    assert actions.count("reminder.escalated") == 3
    assert {"reminder.delivered", "reminder.case_opened", "reminder.sent"} <= set(actions)
    assert "数字城管已立案" in audit
    for secret in (ALIYUN_SECRET, DING_TOKEN, DING_SECRET, CASE_TOKEN):
        assert secret not in page and secret not in audit
    feed.db.close()
    server.store.close()


def test_a_cleared_sidewalk_stops_the_ladder(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, fakes: dict[str, FakeApi]
) -> None:
    server = start(ladder_config(tmp_path, fakes), users_db, clock)
    feed = Feed(server.config)
    iid = feed.send(incident_message())
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    tick(server)
    feed.send(incident_message(incident_id=uuid.UUID(iid), seq=1, event=IncidentEventKind.CLEARED))
    clock.advance(100 * HOUR)
    tick(server)
    assert sorted(r[0] for r in rows(server)) == ["new_incident", "reminder"]
    status = (
        server.store.read().execute("SELECT status FROM workflow WHERE incident_id = ?", [iid]).fetchone()
    )
    assert status == ("rectified",)
    feed.db.close()
    server.store.close()


def test_quiet_hours_hold_the_sms_without_counting_an_attempt(
    tmp_path: Path, users_db: UsersTemplate, fakes: dict[str, FakeApi]
) -> None:
    night = ManualClock(datetime(2026, 5, 1, 14, 30, tzinfo=UTC))  # 22:30 in Fuzhou
    config = ladder_config(tmp_path, fakes, quiet_hours={"start": "21:00", "end": "08:00"})
    server = start(config, users_db, night)
    feed = Feed(server.config)
    iid = feed.send(incident_message())
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    assert server.dispatcher.run_once() == 0
    held = (
        server.store.read()
        .execute("SELECT status, attempts, next_attempt_at FROM reminders WHERE step = 'reminder'")
        .fetchone()
    )
    assert held == ("pending", 0, "2026-05-02T00:00:00.000000Z")  # 08:00 CST
    detail = (
        server.store.read()
        .execute("SELECT detail FROM audit_log WHERE what = 'reminder.deferred'")
        .fetchone()
    )
    assert json.loads(detail[0])["why"] == "quiet_hours"
    night.advance(9.5 * HOUR)
    assert server.dispatcher.run_once() == 1
    feed.db.close()
    server.store.close()


def test_the_per_shop_sms_limit_defers_the_next_one(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, fakes: dict[str, FakeApi]
) -> None:
    config = ladder_config(tmp_path, fakes, max_per_shop=2, per_shop_window_h=24)
    server = start(config, users_db, clock)
    feed = Feed(server.config)
    for _ in range(3):  # three confirmed incidents of one shop, ten minutes apart
        iid = feed.send(incident_message())
        server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
        server.dispatcher.run_once()
        clock.advance(600)
    aliyun: china_fakes.AliyunSms = fakes["aliyun"].answer  # type: ignore[assignment]
    assert len(aliyun.sent) == 2
    held = (
        server.store.read()
        .execute(
            "SELECT next_attempt_at, attempts FROM reminders WHERE step = 'reminder' AND status = 'pending'"
        )
        .fetchone()
    )
    assert held == ("2026-05-02T02:00:00.000000Z", 0)  # when the first SMS leaves the 24 h window
    feed.db.close()
    server.store.close()


def test_tencent_sms_and_its_receipt_through_the_server(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, fakes: dict[str, FakeApi]
) -> None:
    server = start(ladder_config(tmp_path, fakes, provider="tencent"), users_db, clock)
    tencent: china_fakes.TencentSms = fakes["tencent"].answer  # type: ignore[assignment]
    feed = Feed(server.config)
    iid = feed.send(incident_message())
    server.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
    tick(server)
    assert tencent.sent[0]["PhoneNumberSet"] == ["+8613912345678"]
    assert tencent.sent[0]["TemplateParamSet"][0] == "东街12号便利店"
    # The poller asks with the wall clock's EndTime; ManualClock drives only when it asks.
    clock.advance(61)
    tick(server)
    reminder = next(r for r in rows(server) if r[0] == "reminder")
    assert reminder[:6] == ("reminder", "sms", "+8613912345678", "sent", "2028:1", "delivered")
    feed.db.close()
    server.store.close()


def test_a_step_that_needs_an_unconfigured_channel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=re.escape("escalation.inspector_group_after_h needs robots.inspector_channel")
    ):
        make_config(tmp_path, escalation={"inspector_group_after_h": 24})
    with pytest.raises(ValueError, match=re.escape("escalation.case_push_after_h must be later")):
        make_config(tmp_path, escalation={"second_reminder_after_h": 4, "case_push_after_h": 2})
    assert T0.tzinfo is UTC
