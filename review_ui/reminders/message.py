"""What a reminder says: one text per locale, built from the incident and the shop."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from review_ui.i18n import Catalog
from review_ui.localtime import display_zone, parse

TEMPLATES = {
    "zh-CN": {
        "subject": "整改提醒：{shop_name} 门前存在出店经营（{label}）",
        "body": (
            "{shop_name}（{operator}）：\n\n"
            "经城市管理人员核实，{opened_at} 在贵店门前人行道区域（摄像头 {camera_id}，区域 {zone_id}）"
            "发现堆放物品（{label}），属于越门经营/出店经营行为。\n"
            "请于 {deadline} 前完成整改，将物品移回店内。\n\n"
            "证据图片：{evidence}\n"
            "事件编号：{incident_id}\n"
        ),
    },
    "en": {
        "subject": "Rectification reminder: goods outside {shop_name} ({label})",
        "body": (
            "Dear {shop_name} ({operator}),\n\n"
            "An inspector confirmed that on {opened_at} goods ({label}) were placed on the sidewalk "
            "in front of your shop (camera {camera_id}, zone {zone_id}).\n"
            "Please move them back inside before {deadline}.\n\n"
            "Evidence: {evidence}\n"
            "Incident: {incident_id}\n"
        ),
    },
}


SECOND_PREFIX = {"zh-CN": "【再次提醒】", "en": "[Second reminder] "}


@dataclass(frozen=True)
class ReminderContent:
    """Everything a channel needs; channels choose what to use (mail attaches the JPEG)."""

    reminder_id: int
    incident_id: str
    shop_id: str
    shop_name: str
    operator: str
    locale: str
    label: str
    camera_id: str
    zone_id: str
    opened_at: str
    deadline_at: str
    evidence_url: str
    evidence_file: Path | None
    timezone: str = "Asia/Shanghai"  # the shop reads local time (review.yaml `timezone`)
    address: str = ""  # the shop's address from the registry, when it has one
    step: str = "reminder"  # the escalation ladder's step (review_ui.reminders.ladder.Step)

    @property
    def place(self) -> str:
        """Where, in words a shop or an inspector recognises: the address, else camera / zone."""
        return self.address or f"{self.camera_id} / {self.zone_id}"

    def fields(self) -> dict[str, str]:
        """The values templates may use (mail text, SMS variables, robot markdown)."""
        return {
            "shop_name": self.shop_name,
            "operator": self.operator or self.shop_name,
            "place": self.place,
            "label": label_in(self.locale, self.label),
            "camera_id": self.camera_id,
            "zone_id": self.zone_id,
            "incident_id": self.incident_id,
            "opened_at": _local_minute(self.opened_at, self.timezone),
            "deadline": _local_minute(self.deadline_at, self.timezone),
            "evidence": self.evidence_url,
        }

    def render(self) -> tuple[str, str]:
        texts = TEMPLATES.get(self.locale, TEMPLATES["zh-CN"])
        fields = self.fields()
        subject = texts["subject"].format(**fields)
        if self.step == "second_reminder":
            subject = SECOND_PREFIX.get(self.locale, SECOND_PREFIX["zh-CN"]) + subject
        return subject, texts["body"].format(**fields)

    def as_json(self) -> dict[str, object]:
        subject, body = self.render()
        return {
            "type": "curbwatch.reminder/1",
            "reminder_id": self.reminder_id,
            "incident_id": self.incident_id,
            "shop": {"id": self.shop_id, "name": self.shop_name},
            "label": self.label,
            "camera_id": self.camera_id,
            "zone_id": self.zone_id,
            "opened_at": self.opened_at,
            "deadline_at": self.deadline_at,
            "evidence_url": self.evidence_url,
            "locale": self.locale,
            "subject": subject,
            "text": body,
            "step": self.step,
        }


@cache
def _catalog() -> Catalog:
    return Catalog()


def label_in(locale: str, label: str) -> str:
    """The object's class in the shop's language ("bicycle" -> "自行车"); unknown ones as they are."""
    key = f"class_{label}"
    translated = _catalog().translate(locale, key)
    return label if translated == key else translated


def _local_minute(stamp: str, timezone: str) -> str:
    """'2026-05-02 10:00 CST' in the shop's timezone; the stamp as is when it does not parse."""
    value = parse(stamp)
    if value is None:
        return stamp
    local = value.astimezone(display_zone(timezone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
