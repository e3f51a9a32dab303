"""Builds the channels for China from review.yaml: SMS, the group robots, the case push.

Secrets are read from their files here, once, at start; a channel that is not configured is an
`UnavailableChannel` whose error says which key to set."""

from __future__ import annotations

from dataclasses import dataclass, field

from review_ui.config import ReviewConfig, read_secret
from review_ui.reminders.case_push import CasePushChannel
from review_ui.reminders.channels import Channel, UnavailableChannel
from review_ui.reminders.robots import DingTalkRobot, WeComRobot
from review_ui.reminders.sms import SmsChannel, load_credentials
from review_ui.reminders.sms_aliyun import DEFAULT_ENDPOINT as ALIYUN_ENDPOINT
from review_ui.reminders.sms_aliyun import AliyunSmsChannel
from review_ui.reminders.sms_tencent import DEFAULT_ENDPOINT as TENCENT_ENDPOINT
from review_ui.reminders.sms_tencent import TencentSmsChannel


@dataclass
class ChinaChannels:
    channels: dict[str, Channel] = field(default_factory=dict)
    sms: SmsChannel | None = None  # for the receipt poller


def build_sms(config: ReviewConfig) -> SmsChannel | None:
    sms = config.sms
    if sms.provider is None or sms.credentials_file is None:
        return None
    credentials = load_credentials(sms.credentials_file)
    if sms.provider == "aliyun":
        return AliyunSmsChannel(
            credentials,
            sms.sign_name,
            {str(locale): template for locale, template in sms.templates.items()},
            endpoint=sms.endpoint or ALIYUN_ENDPOINT,
            max_param_chars=sms.max_param_chars,
            timeout_s=sms.timeout_s,
        )
    return TencentSmsChannel(
        credentials,
        sms.sign_name,
        sms.sdk_app_id,
        {str(locale): template for locale, template in sms.templates.items()},
        endpoint=sms.endpoint or TENCENT_ENDPOINT,
        region=sms.region,
        max_param_chars=sms.max_param_chars,
        timeout_s=sms.timeout_s,
    )


def build_china_channels(config: ReviewConfig) -> ChinaChannels:
    built = ChinaChannels()
    sms = build_sms(config)
    built.sms = sms
    built.channels["sms"] = (
        sms if sms is not None else UnavailableChannel("SMS is not configured (sms.provider)")
    )
    robots = config.robots
    wecom_url = read_secret(robots.wecom_url_file)
    built.channels["wecom"] = (
        WeComRobot(wecom_url, robots.timeout_s)
        if wecom_url
        else UnavailableChannel("WeCom robot is not configured (robots.wecom_url_file)")
    )
    dingtalk_url = read_secret(robots.dingtalk_url_file)
    built.channels["dingtalk"] = (
        DingTalkRobot(dingtalk_url, read_secret(robots.dingtalk_secret_file), robots.timeout_s)
        if dingtalk_url
        else UnavailableChannel("DingTalk robot is not configured (robots.dingtalk_url_file)")
    )
    case_push = config.case_push
    built.channels["case_push"] = (
        CasePushChannel(read_secret(case_push.token_file), case_push.source, case_push.timeout_s)
        if case_push.url
        else UnavailableChannel("case push is not configured (case_push.url)")
    )
    return built
