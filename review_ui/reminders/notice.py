"""What the inspectors' group reads: a short markdown card per incident, in the server's language."""

from __future__ import annotations

from review_ui.reminders.message import ReminderContent

TITLES = {
    "zh-CN": {"new_incident": "新发现：{shop_name} 门前出店经营", "overdue": "逾期未整改：{shop_name}"},
    "en": {"new_incident": "New incident at {shop_name}", "overdue": "Overdue, not rectified: {shop_name}"},
}
BODIES = {
    "zh-CN": {
        "new_incident": "{label}，{opened_at} 发现，待审核。",
        "overdue": "已于 {opened_at} 发现并提醒，整改期限 {deadline} 已过，现场仍未清理。",
    },
    "en": {
        "new_incident": "{label}, seen {opened_at}, waiting for review.",
        "overdue": "Seen {opened_at}, reminded; the deadline {deadline} passed, the sidewalk is not clear.",
    },
}
LINKS = {
    "zh-CN": ("地点", "证据图片", "事件"),
    "en": ("Place", "Evidence", "Incident"),
}


def _markdown_text(value: str) -> str:
    """A shop name or address cannot start a heading or a link of its own."""
    return value.replace("\n", " ").replace("[", "(").replace("]", ")").replace("#", "＃")


def notice_markdown(content: ReminderContent) -> tuple[str, str]:
    """(title, markdown) for a 'new_incident' or an overdue ('inspector_group') notice."""
    locale = content.locale if content.locale in TITLES else "zh-CN"
    kind = "new_incident" if content.step == "new_incident" else "overdue"
    fields = {key: _markdown_text(value) for key, value in content.fields().items()}
    title = TITLES[locale][kind].format(**fields)
    place, evidence, incident = LINKS[locale]
    text = (
        f"### {title}\n\n"
        f"{BODIES[locale][kind].format(**fields)}\n\n"
        f"- {place}: {fields['place']}\n"
        f"- {incident}: {fields['incident_id']}\n\n"
        f"[{evidence}]({content.evidence_url})"
    )
    return title, text
