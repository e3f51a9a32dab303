"""Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms, and QuerySendDetails for the receipt.

RPC-style API, signature version 1.0: the sorted, percent-encoded parameters are signed with
HMAC-SHA1 under "AccessKeySecret&" (help.aliyun.com "RPC 签名机制", document 25490)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx

from review_ui.reminders.channels import DeliveryError
from review_ui.reminders.message import ReminderContent
from review_ui.reminders.phone import PhoneError, normalize_phone
from review_ui.reminders.settings import SmsTemplate
from review_ui.reminders.sms import Credentials, Receipt, scrub, template_for, template_values

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
API_VERSION = "2017-05-25"
# QuerySendDetails' SendStatus: 1 waiting for the carrier, 2 failed, 3 delivered.
WAITING, FAILED, DELIVERED = 1, 2, 3


def percent_encode(text: str) -> str:
    """RFC 3986 as the signature wants it: only A-Z a-z 0-9 - _ . ~ stay, space is %20."""
    return urllib.parse.quote(text, safe="-_.~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def rpc_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def provider_number(e164: str) -> str:
    """Alibaba's form: 11 digits for the mainland, country code + number (no +) elsewhere."""
    return e164[3:] if e164.startswith("+86") else e164[1:]


class AliyunSmsChannel:
    def __init__(
        self,
        credentials: Credentials,
        sign_name: str,
        templates: Mapping[str, SmsTemplate],
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        max_param_chars: int = 35,
        timeout_s: float = 10.0,
        wall: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.endpoint = endpoint
        self.max_param_chars = max_param_chars
        self._wall = wall
        self._nonce = nonce
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def signed(self, action: str, params: Mapping[str, str]) -> dict[str, str]:
        """The request's parameters, common ones and Signature included."""
        stamp = datetime.fromtimestamp(self._wall(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        full = {
            "AccessKeyId": self._credentials.key_id,
            "Action": action,
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": stamp,
            "Version": API_VERSION,
            **params,
        }
        full["Signature"] = rpc_signature(self._credentials.secret, "POST", full)
        return full

    def _call(self, action: str, params: Mapping[str, str]) -> dict[str, object]:
        # POST with a form body: the phone number and the text stay out of URLs and proxy logs.
        try:
            response = self._http.post(self.endpoint, data=self.signed(action, params))
        except httpx.HTTPError as exc:
            detail = scrub(str(exc), self._credentials.secret)
            raise DeliveryError(f"aliyun {action}: {type(exc).__name__}: {detail}") from None
        try:
            body = response.json()
        except ValueError:
            raise DeliveryError(f"aliyun {action}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(body, dict):
            raise DeliveryError(f"aliyun {action}: HTTP {response.status_code}, unexpected answer")
        if body.get("Code") != "OK":
            message = scrub(str(body.get("Message", "")), self._credentials.secret)[:200]
            raise DeliveryError(f"aliyun {action}: {body.get('Code')}: {message}")
        return body

    def send(self, target: str, content: ReminderContent) -> str:
        try:
            number = normalize_phone(target)
        except PhoneError as exc:
            raise DeliveryError(f"aliyun SendSms: {exc}") from None
        template = template_for(self.templates, content.locale)
        values = template_values(template, content, self.max_param_chars)
        body = self._call(
            "SendSms",
            {
                "PhoneNumbers": provider_number(number),
                "SignName": self.sign_name,
                "TemplateCode": template.id,
                "TemplateParam": json.dumps(values, ensure_ascii=False),
                "OutId": f"curbwatch-{content.reminder_id}",
            },
        )
        biz_id = body.get("BizId")
        if not isinstance(biz_id, str) or not biz_id:
            raise DeliveryError("aliyun SendSms: answer OK but without BizId")
        return biz_id

    def receipt(self, provider_ref: str, target: str, sent_at: str) -> Receipt | None:
        sent = datetime.fromisoformat(sent_at.replace("Z", "+00:00"))
        body = self._call(
            "QuerySendDetails",
            {
                "PhoneNumber": provider_number(normalize_phone(target)),
                "BizId": provider_ref,
                # The send date as Alibaba keeps it: Beijing time.
                "SendDate": sent.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d"),
                "PageSize": "10",
                "CurrentPage": "1",
            },
        )
        dtos = body.get("SmsSendDetailDTOs")
        rows = dtos.get("SmsSendDetailDTO") if isinstance(dtos, dict) else None
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
            return None  # not listed yet
        row = rows[0]
        status = int(str(row.get("SendStatus", WAITING)))
        if status == WAITING:
            return None
        detail = str(row.get("ErrCode") or "")
        received = row.get("ReceiveDate")
        return Receipt(status == DELIVERED, detail, str(received) if received else None)
