"""SMS (Alibaba, Tencent), group robots (DingTalk, WeCom) and the case push against local fakes
that check each API's signature as its documentation specifies (tests/review_ui/china_fakes.py)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from review_ui.reminders.case_push import CasePushChannel
from review_ui.reminders.channels import DeliveryError
from review_ui.reminders.message import ReminderContent
from review_ui.reminders.phone import PhoneError, normalize_phone
from review_ui.reminders.robots import DingTalkRobot, WeComRobot, dingtalk_sign
from review_ui.reminders.settings import SmsSettings, SmsTemplate
from review_ui.reminders.sms import Credentials, CredentialsError, Receipt, load_credentials
from review_ui.reminders.sms_aliyun import AliyunSmsChannel, rpc_signature
from review_ui.reminders.sms_tencent import TencentSmsChannel, tc3_authorization
from tests.review_ui import china_fakes
from tests.review_ui.china_fakes import FakeApi, serving

ALIYUN_KEY = Credentials("LTAI-test-id", "aliyun-test-secret-7f3a")
TENCENT_KEY = Credentials("AKID-test-id", "tencent-test-secret-91c2")
ALIYUN_TEMPLATES = {
    "zh-CN": SmsTemplate.model_validate(
        {
            "id": "SMS_465000001",
            "params": {
                "shop": "shop_name",
                "place": "place",
                "time": "opened_at",
                "deadline": "deadline",
                "link": "evidence",
            },
        }
    ),
    "en": SmsTemplate.model_validate(
        {"id": "SMS_465000002", "params": {"shop": "shop_name", "link": "evidence"}}
    ),
}
TENCENT_TEMPLATES = {
    "zh-CN": SmsTemplate.model_validate(
        {"id": "2100001", "params": {"1": "shop_name", "2": "place", "3": "deadline", "4": "evidence"}}
    )
}
LINK = "https://review.example/e/7c0f6c1e-5b8f-4d84-9d6e-3cfa9a1b2c3d?exp=1777700000&sig=" + "a" * 43


def content(
    locale: str = "zh-CN", step: str = "reminder", shop_name: str = "东街12号便利店"
) -> ReminderContent:
    return ReminderContent(
        reminder_id=7,
        incident_id="7c0f6c1e-5b8f-4d84-9d6e-3cfa9a1b2c3d",
        shop_id="shop-12",
        shop_name=shop_name,
        operator="王老板",
        locale=locale,
        label="chair",
        camera_id="cam-01",
        zone_id="door-12",
        opened_at="2026-05-01T02:00:00.000000Z",
        deadline_at="2026-05-02T02:00:00.000000Z",
        evidence_url=LINK,
        evidence_file=None,
        address="鼓楼区东街12号",
        step=step,
    )


# ------------------------------------------------------------------ documentation vectors


def test_aliyun_documentation_example() -> None:
    # help.aliyun.com "签名机制": DescribeRegions with AccessKey testid / testsecret, signed with GET.
    params = {
        "TimeStamp": "2016-02-23T12:46:24Z",
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Version": "2014-05-26",
        "SignatureVersion": "1.0",
    }
    documented = "CT9X0VtwR86fNWSnsc6v8YGOjuE="
    assert china_fakes.aliyun_signature("testsecret", "GET", params) == documented
    assert rpc_signature("testsecret", "GET", params) == documented


# Tencent's "签名方法 v3" worked example: CVM DescribeInstances at 1551113065. The current page masks
# the key as "Gu5t9xGARNpq86cd98joQYCN3*******" and prints 2230eefd...; earlier versions used
# ...EXAMPLE keys and printed 72e494ea...; both are the same algorithm.
TENCENT_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'


@pytest.mark.parametrize(
    ("secret_id", "secret_key", "documented"),
    [
        (
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
        ),
        (
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        ),
    ],
)
def test_tencent_documentation_example(secret_id: str, secret_key: str, documented: str) -> None:
    headers = {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"}
    canonical, signature = china_fakes.tc3_signature(
        secret_key, "POST", headers, ["content-type", "host"], TENCENT_PAYLOAD, 1551113065, "cvm"
    )
    assert canonical.endswith(
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )  # documented
    assert signature == documented
    authorization = tc3_authorization(
        secret_id, secret_key, "cvm", "cvm.tencentcloudapi.com", TENCENT_PAYLOAD, 1551113065
    )
    assert authorization == (
        f"TC3-HMAC-SHA256 Credential={secret_id}/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={documented}"
    )


def test_dingtalk_sign_matches_the_documentation_sample() -> None:
    for secret, timestamp in (("SEC" + "0" * 61, 1700000000000), ("this is secret", 1577808000123)):
        from urllib.parse import quote_plus

        assert quote_plus(dingtalk_sign(secret, timestamp)) == china_fakes.dingtalk_doc_sign(
            secret, str(timestamp)
        )


# ------------------------------------------------------------------ phone numbers


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("13912345678", "+8613912345678"),
        ("139 1234 5678", "+8613912345678"),
        ("+86 139-1234-5678", "+8613912345678"),
        ("008613912345678", "+8613912345678"),
        ("8613912345678", "+8613912345678"),
        ("+85291234567", "+85291234567"),
        ("+14155550123", "+14155550123"),
    ],
)
def test_phone_numbers_become_e164(text: str, e164: str) -> None:
    assert normalize_phone(text) == e164


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("12912345678", "not a phone number"),  # 12x is no mainland mobile range
        ("1391234567", "not a phone number"),  # 10 digits
        ("+8602112345678", "not a mainland mobile"),  # a landline after +86
        ("owner@shop.example", "not a phone number"),
        ("+0123456789", "not a phone number"),
        ("", "not a phone number"),
    ],
)
def test_bad_phone_numbers_are_refused_with_the_expected_form(text: str, why: str) -> None:
    with pytest.raises(PhoneError, match=why):
        normalize_phone(text)


# ------------------------------------------------------------------ credentials


def test_credentials_come_from_a_json_file_and_never_show(tmp_path: Path) -> None:
    path = tmp_path / "sms.json"
    path.write_text(json.dumps({"id": "LTAI-x", "secret": "s3cr3t-value"}))
    credentials = load_credentials(path)
    assert credentials.key_id == "LTAI-x" and "s3cr3t-value" not in repr(credentials)
    path.write_text("id=LTAI-x\nsecret=s3cr3t-value")
    with pytest.raises(CredentialsError, match="not JSON") as caught:
        load_credentials(path)
    assert "s3cr3t" not in str(caught.value)
    path.write_text(json.dumps({"id": "LTAI-x"}))
    with pytest.raises(CredentialsError, match="non-empty strings"):
        load_credentials(path)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"provider": "aliyun"}, "needs sms.credentials_file, sms.sign_name, sms.templates.zh-CN"),
        (
            {
                "provider": "tencent",
                "credentials_file": "k.json",
                "sign_name": "城管",
                "templates": {"zh-CN": {"id": "1", "params": {"1": "shop_name"}}},
            },
            "sms.sdk_app_id",
        ),
        (
            {
                "provider": "tencent",
                "credentials_file": "k.json",
                "sign_name": "城管",
                "sdk_app_id": "1400",
                "templates": {"zh-CN": {"id": "1", "params": {"1": "shop_name", "3": "place"}}},
            },
            "Tencent variables are '1', '2', ... in order",
        ),
        ({"templates": {"zh-CN": {"id": "1", "params": {"x": "password"}}}}, "params.x"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start must be HH:MM"),
    ],
)
def test_sms_settings_errors_name_the_keys(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        SmsSettings.model_validate(settings)


# ------------------------------------------------------------------ Alibaba Cloud SMS


@pytest.fixture
def aliyun() -> Iterator[tuple[china_fakes.AliyunSms, str]]:
    fake = china_fakes.AliyunSms(ALIYUN_KEY.key_id, ALIYUN_KEY.secret)
    with serving(FakeApi(fake)) as api:
        yield fake, api.url + "/"


def aliyun_channel(endpoint: str, credentials: Credentials = ALIYUN_KEY) -> AliyunSmsChannel:
    return AliyunSmsChannel(credentials, "鼓楼城管", ALIYUN_TEMPLATES, endpoint=endpoint, max_param_chars=35)


def test_aliyun_sends_a_signed_sms_with_the_template_values(
    aliyun: tuple[china_fakes.AliyunSms, str],
) -> None:
    fake, endpoint = aliyun
    biz_id = aliyun_channel(endpoint).send("+86 139 1234 5678", content())
    assert biz_id == "900001^0"
    sent = fake.sent[0]
    assert sent["PhoneNumbers"] == "13912345678"  # Alibaba's mainland form: no +86
    assert (sent["SignName"], sent["TemplateCode"], sent["OutId"]) == (
        "鼓楼城管",
        "SMS_465000001",
        "curbwatch-7",
    )
    assert json.loads(sent["TemplateParam"]) == {
        "shop": "东街12号便利店",
        "place": "鼓楼区东街12号",
        "time": "2026-05-01 10:00 CST",
        "deadline": "2026-05-02 10:00 CST",
        "link": LINK,  # longer than 35 characters, kept whole
    }


def test_aliyun_english_template_and_cut_values(aliyun: tuple[china_fakes.AliyunSms, str]) -> None:
    fake, endpoint = aliyun
    aliyun_channel(endpoint).send("13912345678", content("en", shop_name="A" * 80))
    assert fake.sent[0]["TemplateCode"] == "SMS_465000002"
    assert json.loads(fake.sent[0]["TemplateParam"]) == {"shop": "A" * 35, "link": LINK}


def test_aliyun_wrong_secret_is_a_signature_error_without_the_secret(
    aliyun: tuple[china_fakes.AliyunSms, str],
) -> None:
    _fake, endpoint = aliyun
    wrong = Credentials(ALIYUN_KEY.key_id, "not-the-secret")
    with pytest.raises(DeliveryError, match="SignatureDoesNotMatch") as caught:
        aliyun_channel(endpoint, wrong).send("13912345678", content())
    assert "not-the-secret" not in str(caught.value)


def test_aliyun_refusal_and_bad_number(aliyun: tuple[china_fakes.AliyunSms, str]) -> None:
    fake, endpoint = aliyun
    fake.refuse_with = "isv.BUSINESS_LIMIT_CONTROL"
    with pytest.raises(DeliveryError, match=re.escape("isv.BUSINESS_LIMIT_CONTROL")):
        aliyun_channel(endpoint).send("13912345678", content())
    with pytest.raises(DeliveryError, match="not a phone number"):
        aliyun_channel(endpoint).send("owner@shop.example", content())
    assert len(fake.sent) == 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(3, Receipt(True, "DELIVERED", "2026-05-01 10:00:05")), (2, Receipt(False, "MK:0001", None)), (1, None)],
)
def test_aliyun_receipt(
    aliyun: tuple[china_fakes.AliyunSms, str], status: int, expected: Receipt | None
) -> None:
    fake, endpoint = aliyun
    channel = aliyun_channel(endpoint)
    biz_id = channel.send("13912345678", content())
    fake.status = status
    assert channel.receipt(biz_id, "+8613912345678", "2026-05-01T02:00:01.000000Z") == expected


def test_aliyun_unreachable_is_a_delivery_error() -> None:
    channel = aliyun_channel("http://127.0.0.1:9/")
    with pytest.raises(DeliveryError, match="aliyun SendSms: ConnectError"):
        channel.send("13912345678", content())


# ------------------------------------------------------------------ Tencent Cloud SMS


@pytest.fixture
def tencent() -> Iterator[tuple[china_fakes.TencentSms, str]]:
    fake = china_fakes.TencentSms(TENCENT_KEY.key_id, TENCENT_KEY.secret)
    with serving(FakeApi(fake)) as api:
        yield fake, api.url + "/"


def tencent_channel(endpoint: str, credentials: Credentials = TENCENT_KEY) -> TencentSmsChannel:
    return TencentSmsChannel(credentials, "鼓楼城管", "1400787878", TENCENT_TEMPLATES, endpoint=endpoint)


def test_tencent_sends_a_signed_sms_with_ordered_parameters(
    tencent: tuple[china_fakes.TencentSms, str],
) -> None:
    fake, endpoint = tencent
    serial = tencent_channel(endpoint).send("13912345678", content("en"))  # no en template: zh-CN
    assert serial == "2028:1"
    assert fake.sent[0] == {
        "PhoneNumberSet": ["+8613912345678"],
        "SmsSdkAppId": "1400787878",
        "SignName": "鼓楼城管",
        "TemplateId": "2100001",
        "TemplateParamSet": ["东街12号便利店", "鼓楼区东街12号", "2026-05-02 10:00 CST", LINK],
        "SessionContext": "curbwatch-7",
    }


def test_tencent_wrong_key_and_a_refused_number(tencent: tuple[china_fakes.TencentSms, str]) -> None:
    fake, endpoint = tencent
    with pytest.raises(DeliveryError, match=re.escape("AuthFailure.SignatureFailure")):
        tencent_channel(endpoint, Credentials(TENCENT_KEY.key_id, "wrong-key")).send("13912345678", content())
    fake.number_code = "LimitExceeded.PhoneNumberDailyLimit"
    with pytest.raises(DeliveryError, match=re.escape("LimitExceeded.PhoneNumberDailyLimit")):
        tencent_channel(endpoint).send("13912345678", content())


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("SUCCESS", Receipt(True, "用户短信送达成功", "2026-05-01 10:00:05")),
        ("FAIL", Receipt(False, "关机", "2026-05-01 10:00:05")),
        (None, None),
    ],
)
def test_tencent_receipt(
    tencent: tuple[china_fakes.TencentSms, str], report: str | None, expected: Receipt | None
) -> None:
    fake, endpoint = tencent
    channel = tencent_channel(endpoint)
    serial = channel.send("13912345678", content())
    fake.report = report
    sent_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert channel.receipt(serial, "+8613912345678", sent_at) == expected


# ------------------------------------------------------------------ robots


def test_dingtalk_posts_signed_markdown_with_the_evidence_link() -> None:
    fake = china_fakes.DingTalkRobot("tok-123", "SEC" + "ab" * 30)
    with serving(FakeApi(fake)) as api:
        robot = DingTalkRobot(f"{api.url}/robot/send?access_token=tok-123", fake.secret)
        robot.send("inspectors", content(step="inspector_group"))
        with pytest.raises(DeliveryError, match="errcode 310000") as caught:
            DingTalkRobot(f"{api.url}/robot/send?access_token=tok-123", "SECwrong").send(
                "inspectors", content()
            )
    assert "tok-123" not in str(caught.value) and "SECwrong" not in str(caught.value)
    markdown = fake.posts[0]["markdown"]
    assert markdown["title"] == "逾期未整改：东街12号便利店"
    assert f"]({LINK})" in markdown["text"] and "鼓楼区东街12号" in markdown["text"]


def test_wecom_posts_markdown_and_a_bad_key_hides_the_url() -> None:
    fake = china_fakes.WeComRobot("key-abc")
    with serving(FakeApi(fake)) as api:
        WeComRobot(f"{api.url}/cgi-bin/webhook/send?key=key-abc").send(
            "inspectors", content("en", "new_incident")
        )
        with pytest.raises(DeliveryError, match="errcode 93000") as caught:
            WeComRobot(f"{api.url}/cgi-bin/webhook/send?key=key-other").send("inspectors", content())
    assert "key-other" not in str(caught.value)
    text = fake.posts[0]["markdown"]["content"]
    assert text.startswith("### New incident at 东街12号便利店") and LINK in text


def test_a_shop_name_cannot_forge_markdown_links() -> None:
    fake = china_fakes.WeComRobot("k")
    with serving(FakeApi(fake)) as api:
        forged = content(shop_name="[点我](https://evil.example)\n# 标题")
        WeComRobot(f"{api.url}/cgi-bin/webhook/send?key=k").send("inspectors", forged)
    text = fake.posts[0]["markdown"]["content"]
    assert "](https://evil.example)" not in text and "\n# " not in text


# ------------------------------------------------------------------ case push


def test_case_push_is_idempotent_by_incident_id() -> None:
    fake = china_fakes.CaseSystem("case-token")
    with serving(FakeApi(fake)) as api:
        channel = CasePushChannel("case-token")
        first = channel.send(api.url + "/cases", content(step="case_push"))
        again = channel.send(api.url + "/cases", content(step="case_push"))  # a lost answer, re-sent
        with pytest.raises(DeliveryError, match="HTTP 401"):
            CasePushChannel("wrong").send(api.url + "/cases", content(step="case_push"))
    assert first == again == "GL-2026-000001" and len(fake.cases) == 1 and fake.posts == 3
    case = fake.cases["7c0f6c1e-5b8f-4d84-9d6e-3cfa9a1b2c3d"]["case"]
    assert (case["case_type"], case["case_type_code"]) == ("出店经营", "out_of_shop")
    assert case["location"]["address"] == "鼓楼区东街12号" and case["evidence_url"] == LINK
    assert case["shop"] == {"id": "shop-12", "name": "东街12号便利店", "operator": "王老板"}


def test_no_secret_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for channel in (
        aliyun_channel("http://127.0.0.1:9/"),
        tencent_channel("http://127.0.0.1:9/"),
        DingTalkRobot("http://127.0.0.1:9/robot/send?access_token=tok-secret", "SECsecret"),
        WeComRobot("http://127.0.0.1:9/cgi-bin/webhook/send?key=key-secret"),
    ):
        with pytest.raises(DeliveryError) as caught:
            channel.send("13912345678", content())
        logging.getLogger("test").warning("failed: %s", caught.value)
    for secret in (ALIYUN_KEY.secret, TENCENT_KEY.secret, "tok-secret", "SECsecret", "key-secret"):
        assert secret not in caplog.text
