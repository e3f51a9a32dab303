"""Case push to a city's 数字城管 case system: the `curbwatch.case/1` JSON profile (docs/reminders.md).

One case per incident: our incident id is the external id and the Idempotency-Key, so a
re-delivery after a lost answer gets the same case back (200 or 409 with its case_number)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from review_ui.reminders.channels import DeliveryError
from review_ui.reminders.message import ReminderContent, label_in
from review_ui.reminders.sms import scrub

SCHEMA = "curbwatch.case/1"
# 出店经营: goods put out beyond a shop's door; 占道经营: street occupation no shop answers for.
OUT_OF_SHOP = ("out_of_shop", "出店经营")
ROAD_OCCUPATION = ("road_occupation", "占道经营")
MAX_CASE_NUMBER = 64


def case_document(content: ReminderContent, source: str, reported_at: str) -> dict[str, object]:
    code, name = OUT_OF_SHOP if content.shop_id else ROAD_OCCUPATION
    fields = content.fields()
    return {
        "schema": SCHEMA,
        "external_id": content.incident_id,
        "source": source,
        "case_type": name,
        "case_type_code": code,
        "title": f"{content.shop_name} {name}（{label_in('zh-CN', content.label)}）",
        "description": (
            f"{fields['opened_at']} 于 {content.place} 发现{name}（{label_in('zh-CN', content.label)}），"
            f"已提醒商户于 {fields['deadline']} 前整改，逾期未整改。"
        ),
        "occurred_at": content.opened_at,
        "deadline_at": content.deadline_at,
        "reported_at": reported_at,
        "location": {"address": content.address, "camera_id": content.camera_id, "zone_id": content.zone_id},
        "shop": {"id": content.shop_id, "name": content.shop_name, "operator": content.operator},
        "object": {"label": content.label},
        "evidence_url": content.evidence_url,
    }


class CasePushChannel:
    def __init__(
        self,
        token: str | None,
        source: str = "curbwatch",
        timeout_s: float = 15.0,
        wall: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._token = token
        self.source = source
        self._wall = wall
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def send(self, target: str, content: ReminderContent) -> str:
        reported_at = datetime.fromtimestamp(self._wall(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"Idempotency-Key": content.incident_id, "User-Agent": "curbwatch-review"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._http.post(
                target, json=case_document(content, self.source, reported_at), headers=headers
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"case push: {type(exc).__name__}: {scrub(str(exc), self._token or '')}"
            ) from None
        # 409: the case system already holds a case for this external id and names it.
        if response.status_code not in (200, 201, 409):
            raise DeliveryError(f"case push: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise DeliveryError(f"case push: HTTP {response.status_code}, not JSON") from None
        number = body.get("case_number") if isinstance(body, dict) else None
        if not isinstance(number, str) or not number.strip() or len(number) > MAX_CASE_NUMBER:
            raise DeliveryError(f"case push: HTTP {response.status_code} without a usable case_number")
        return number.strip()
