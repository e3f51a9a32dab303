"""Tencent Cloud SMS (API 3.0, version 2021-01-11): SendSms, and PullSmsSendStatusByPhoneNumber
for the receipt. Requests are signed with TC3-HMAC-SHA256 ("签名方法 v3", document 213/30654)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import httpx

from review_ui.reminders.channels import DeliveryError
from review_ui.reminders.message import ReminderContent
from review_ui.reminders.phone import PhoneError, normalize_phone
from review_ui.reminders.settings import SmsTemplate
from review_ui.reminders.sms import Credentials, Receipt, scrub, template_for, template_values

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com/"
API_VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
ALGORITHM = "TC3-HMAC-SHA256"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def canonical_request(host: str, payload: bytes, content_type: str = CONTENT_TYPE) -> str:
    """POST to "/", no query string, the two signed headers content-type and host."""
    return "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def tc3_authorization(
    secret_id: str, secret_key: str, service: str, host: str, payload: bytes, timestamp: int
) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    hashed = hashlib.sha256(canonical_request(host, payload).encode("utf-8")).hexdigest()
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{hashed}"
    signing_key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    signature = hmac.new(signing_key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
    )


class TencentSmsChannel:
    def __init__(
        self,
        credentials: Credentials,
        sign_name: str,
        sdk_app_id: str,
        templates: Mapping[str, SmsTemplate],
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        region: str = "ap-guangzhou",
        max_param_chars: int = 35,
        timeout_s: float = 10.0,
        wall: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self.sign_name = sign_name
        self.sdk_app_id = sdk_app_id
        self.templates = dict(templates)
        self.endpoint = endpoint
        self.host = httpx.URL(endpoint).netloc.decode("ascii")
        self.region = region
        self.max_param_chars = max_param_chars
        self._wall = wall
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def _call(self, action: str, params: Mapping[str, object]) -> dict[str, object]:
        payload = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self._wall())
        headers = {
            "Authorization": tc3_authorization(
                self._credentials.key_id, self._credentials.secret, SERVICE, self.host, payload, timestamp
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": action,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": API_VERSION,
            "X-TC-Region": self.region,
        }
        try:
            response = self._http.post(self.endpoint, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            detail = scrub(str(exc), self._credentials.secret)
            raise DeliveryError(f"tencent {action}: {type(exc).__name__}: {detail}") from None
        try:
            body = response.json()["Response"]
        except (ValueError, KeyError, TypeError):
            raise DeliveryError(f"tencent {action}: HTTP {response.status_code}, no Response") from None
        if not isinstance(body, dict):
            raise DeliveryError(f"tencent {action}: unexpected answer")
        error = body.get("Error")
        if isinstance(error, dict):
            message = scrub(str(error.get("Message", "")), self._credentials.secret)[:200]
            raise DeliveryError(f"tencent {action}: {error.get('Code')}: {message}")
        return body

    def send(self, target: str, content: ReminderContent) -> str:
        try:
            number = normalize_phone(target)
        except PhoneError as exc:
            raise DeliveryError(f"tencent SendSms: {exc}") from None
        template = template_for(self.templates, content.locale)
        values = template_values(template, content, self.max_param_chars)
        body = self._call(
            "SendSms",
            {
                "PhoneNumberSet": [number],
                "SmsSdkAppId": self.sdk_app_id,
                "SignName": self.sign_name,
                "TemplateId": template.id,
                # {1}, {2}, ... in order (the settings check the names are 1..n).
                "TemplateParamSet": [values[name] for name in sorted(values, key=int)],
                "SessionContext": f"curbwatch-{content.reminder_id}",
            },
        )
        statuses = body.get("SendStatusSet")
        status = statuses[0] if isinstance(statuses, list) and statuses else None
        if not isinstance(status, dict):
            raise DeliveryError("tencent SendSms: no SendStatusSet in the answer")
        # The call can succeed while the one number fails (Code is per number; "Ok" is success).
        if status.get("Code") != "Ok":
            raise DeliveryError(f"tencent SendSms: {status.get('Code')}: {str(status.get('Message'))[:200]}")
        serial = status.get("SerialNo")
        if not isinstance(serial, str) or not serial:
            raise DeliveryError("tencent SendSms: answer Ok but without SerialNo")
        return serial

    def receipt(self, provider_ref: str, target: str, sent_at: str) -> Receipt | None:
        sent = datetime.fromisoformat(sent_at.replace("Z", "+00:00"))
        body = self._call(
            "PullSmsSendStatusByPhoneNumber",
            {
                "BeginTime": int(sent.timestamp()) - 60,
                "EndTime": int(self._wall()),
                "Offset": 0,
                "Limit": 100,
                "PhoneNumber": normalize_phone(target),
                "SmsSdkAppId": self.sdk_app_id,
            },
        )
        reports = body.get("PullSmsSendStatusSet")
        for report in reports if isinstance(reports, list) else []:
            if isinstance(report, dict) and report.get("SerialNo") == provider_ref:
                delivered = report.get("ReportStatus") == "SUCCESS"
                detail = str(report.get("Description") or report.get("ReportStatus") or "")
                received = report.get("UserReceiveTime")
                return Receipt(delivered, detail[:200], str(received) if received else None)
        return None
