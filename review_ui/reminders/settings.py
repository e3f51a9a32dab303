"""Configuration of the channels that reach China: SMS, inspector group robots, the city's case
system, and the escalation ladder that uses them. Part of review.yaml (review_ui.config)."""

from __future__ import annotations

import enum
import itertools
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmsField(enum.StrEnum):
    """What a template variable may carry; the provider-approved template decides the wording."""

    SHOP_NAME = "shop_name"
    OPERATOR = "operator"
    PLACE = "place"  # the shop's address, else camera / zone
    LABEL = "label"  # the object, in the template's language
    OPENED_AT = "opened_at"  # local minute
    DEADLINE = "deadline"  # local minute
    EVIDENCE = "evidence"  # the signed, expiring evidence link
    INCIDENT_ID = "incident_id"


class SmsTemplate(Strict):
    id: str = Field(
        min_length=1,
        max_length=64,
        description="the provider's approved template: Alibaba TemplateCode (SMS_...) or Tencent TemplateId",
    )
    params: dict[str, SmsField] = Field(
        description="template variable -> what it carries; Alibaba: the ${name}s, Tencent: '1', '2', ... "
        "for {1}, {2}, ..."
    )

    @field_validator("params")
    @classmethod
    def _names(cls, params: dict[str, SmsField]) -> dict[str, SmsField]:
        bad = [name for name in params if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", name)]
        if bad:
            raise ValueError(f"template variable names must be letters, digits or _: {bad}")
        return params


HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class QuietHours(Strict):
    start: str = Field("21:00", description="local HH:MM from which no SMS leaves")
    end: str = Field("08:00", description="local HH:MM at which held SMS leave; may be past midnight")

    @model_validator(mode="after")
    def _format(self) -> QuietHours:
        for key in ("start", "end"):
            if not HHMM.match(getattr(self, key)):
                raise ValueError(f"quiet_hours.{key} must be HH:MM, got {getattr(self, key)!r}")
        if self.start == self.end:
            raise ValueError("quiet_hours.start and quiet_hours.end must differ")
        return self


class SmsSettings(Strict):
    provider: Literal["aliyun", "tencent"] | None = Field(
        None, description="which cloud SMS API sends the shops' SMS; none = the sms channel is off"
    )
    credentials_file: Path | None = Field(
        None,
        description='JSON {"id": ..., "secret": ...}: Alibaba AccessKey ID + secret, Tencent SecretId + Key',
    )
    sign_name: str = Field("", max_length=64, description="the approved SMS signature (签名), e.g. 鼓楼城管")
    endpoint: str | None = Field(
        None,
        description="API URL; default https://dysmsapi.aliyuncs.com/ or https://sms.tencentcloudapi.com/",
    )
    sdk_app_id: str = Field("", max_length=32, description="Tencent SmsSdkAppId (tencent only)")
    region: str = Field("ap-guangzhou", max_length=32, description="Tencent X-TC-Region (tencent only)")
    templates: dict[Literal["zh-CN", "en"], SmsTemplate] = Field(
        default_factory=dict, description="the approved template per shop locale; zh-CN is the fallback"
    )
    max_param_chars: int = Field(
        35, ge=1, le=500, description="template values are cut to this many characters (links never)"
    )
    max_per_shop: int = Field(3, ge=1, le=100, description="SMS a shop gets at most per window")
    per_shop_window_h: float = Field(24.0, gt=0, le=24 * 7, description="the rate limit's rolling window")
    quiet_hours: QuietHours | None = Field(
        default_factory=lambda: QuietHours.model_validate({}),
        description="local hours in which SMS wait (null: none)",
    )
    receipt_poll_s: float = Field(
        60.0, ge=5, le=3600, description="how often delivery receipts of sent SMS are asked for"
    )
    receipt_max_age_h: float = Field(
        48.0, gt=0, le=24 * 30, description="stop asking for a receipt this long after sending"
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="HTTP timeout")

    @model_validator(mode="after")
    def _complete(self) -> SmsSettings:
        if self.provider is None:
            return self
        missing = [key for key in ("credentials_file", "sign_name") if not getattr(self, key)]
        if self.provider == "tencent" and not self.sdk_app_id:
            missing.append("sdk_app_id")
        if "zh-CN" not in self.templates:
            missing.append("templates.zh-CN")
        if missing:
            raise ValueError(f"sms.provider {self.provider} needs sms.{', sms.'.join(missing)}")
        if self.provider == "tencent":
            for locale, template in self.templates.items():
                numbers = sorted(int(n) if n.isdigit() else -1 for n in template.params)
                if numbers != list(range(1, len(numbers) + 1)):
                    raise ValueError(
                        f"sms.templates.{locale}.params: Tencent variables are '1', '2', ... in order"
                    )
        return self


class RobotSettings(Strict):
    """Inspectors' group robots: one WeCom and/or one DingTalk group."""

    inspector_channel: Literal["wecom", "dingtalk"] | None = Field(
        None, description="which group hears new incidents and overdue ones; none = off"
    )
    wecom_url_file: Path | None = Field(
        None, description="file with the WeCom robot webhook URL (…/cgi-bin/webhook/send?key=…)"
    )
    dingtalk_url_file: Path | None = Field(
        None, description="file with the DingTalk robot webhook URL (…/robot/send?access_token=…)"
    )
    dingtalk_secret_file: Path | None = Field(
        None, description="file with the DingTalk robot's 加签 secret (SEC…); none = unsigned"
    )
    notify_new_incidents: bool = Field(True, description="post each newly received open incident")
    timeout_s: float = Field(10.0, gt=0, le=120, description="HTTP timeout")

    @model_validator(mode="after")
    def _url_for_channel(self) -> RobotSettings:
        if self.inspector_channel == "wecom" and self.wecom_url_file is None:
            raise ValueError("robots.inspector_channel wecom needs robots.wecom_url_file")
        if self.inspector_channel == "dingtalk" and self.dingtalk_url_file is None:
            raise ValueError("robots.inspector_channel dingtalk needs robots.dingtalk_url_file")
        return self


class CasePushSettings(Strict):
    url: str | None = Field(None, description="the case system's intake URL (curbwatch.case/1); none = off")
    token_file: Path | None = Field(None, description="file with the bearer token the case system issued")
    source: str = Field("curbwatch", max_length=64, description="our name in the case system (source)")
    timeout_s: float = Field(15.0, gt=0, le=120, description="HTTP timeout")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("case_push.url must be an http(s) URL")
        return url


class EscalationSettings(Strict):
    """Hours after the first reminder was sent, while the sidewalk is still not clear."""

    second_reminder_after_h: float | None = Field(
        None, gt=0, le=24 * 30, description="a second reminder to the shop, same channel; none = off"
    )
    inspector_group_after_h: float | None = Field(
        None, gt=0, le=24 * 30, description="'overdue, not rectified' to the inspectors' group; none = off"
    )
    case_push_after_h: float | None = Field(
        None, gt=0, le=24 * 30, description="a case in the city's case system; none = off"
    )

    @model_validator(mode="after")
    def _in_order(self) -> EscalationSettings:
        delays = [
            (key, value)
            for key in ("second_reminder_after_h", "inspector_group_after_h", "case_push_after_h")
            if (value := getattr(self, key)) is not None
        ]
        for (before, early), (after, late) in itertools.pairwise(delays):
            if late <= early:
                raise ValueError(f"escalation.{after} must be later than escalation.{before}")
        return self
