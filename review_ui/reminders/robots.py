"""Group robots of the inspectors' teams: WeCom (企业微信) and DingTalk (钉钉) webhooks.

The webhook URL carries the group's key / access token, so it comes from a file and never
appears in an error, a log line or the reminder's target (that reads "inspectors")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable, Mapping

import httpx

from review_ui.reminders.channels import DeliveryError
from review_ui.reminders.message import ReminderContent
from review_ui.reminders.notice import notice_markdown
from review_ui.reminders.sms import scrub

WECOM_MARKDOWN_MAX_BYTES = 4096  # WeCom refuses longer markdown content


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), before URL encoding."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()).decode()


class _RobotBase:
    name = "robot"

    def __init__(self, url: str, timeout_s: float, transport: httpx.BaseTransport | None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{self.name}: the webhook URL file must hold an http(s) URL")
        self._url = url
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def _post(self, url: str, message: Mapping[str, object], *secrets: str) -> None:
        try:
            response = self._http.post(url, json=message)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"{self.name}: {type(exc).__name__}: {scrub(str(exc), url, *secrets)}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise DeliveryError(f"{self.name}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(body, dict) or body.get("errcode") != 0:
            errmsg = body.get("errmsg") if isinstance(body, dict) else None
            errcode = body.get("errcode") if isinstance(body, dict) else None
            detail = scrub(str(errmsg), url, *secrets)[:200]
            raise DeliveryError(f"{self.name}: HTTP {response.status_code} errcode {errcode}: {detail}")


class WeComRobot(_RobotBase):
    name = "wecom"

    def __init__(
        self, url: str, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        super().__init__(url, timeout_s, transport)

    def send(self, target: str, content: ReminderContent) -> None:
        _title, text = notice_markdown(content)
        data = text.encode("utf-8")[:WECOM_MARKDOWN_MAX_BYTES].decode("utf-8", errors="ignore")
        self._post(self._url, {"msgtype": "markdown", "markdown": {"content": data}})


class DingTalkRobot(_RobotBase):
    name = "dingtalk"

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        timeout_s: float = 10.0,
        wall: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, timeout_s, transport)
        self._secret = secret
        self._wall = wall

    def signed_url(self) -> str:
        if not self._secret:
            return self._url  # a robot secured by keywords or IP ranges instead of 加签
        timestamp_ms = int(self._wall() * 1000)
        sign = urllib.parse.quote_plus(dingtalk_sign(self._secret, timestamp_ms))
        separator = "&" if "?" in self._url else "?"
        return f"{self._url}{separator}timestamp={timestamp_ms}&sign={sign}"

    def send(self, target: str, content: ReminderContent) -> None:
        title, text = notice_markdown(content)
        message = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        self._post(self.signed_url(), message, self._secret or "")
