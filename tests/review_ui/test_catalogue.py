"""The zh-CN and en catalogues are complete: every key a page can ask for exists in both.

Pages ask by literal key (`t('queue')`) or by a value from a closed set (`t('class_' + label)`,
`t('audit_' + what)`): the literal keys are read from the templates, the closed sets from the
enums and the code that writes them. The browser test (test_pages_browser.py) then checks the
rendered pages for anything left in the wrong language.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models.classes import COCO_CLASSES, SIGNBOARD, STATIC_OBJECT
from review_ui.auth import Role
from review_ui.i18n import LOCALES, Catalog
from review_ui.queries import STATUSES
from review_ui.reminders.ladder import Step
from review_ui.review import RejectReason, Verdict
from uplink.messages import CameraState, IncidentEventKind, NodeState, SceneView

ROOT = Path(__file__).resolve().parents[2] / "review_ui"
CATALOGUES = {
    locale: json.loads((ROOT / "locales" / f"{locale}.json").read_text("utf-8")) for locale in LOCALES
}
LITERAL_KEY = re.compile(r"""\bt\(\s*'([^'+]+)'\s*\)""")
# The audit log's actions are "<area>.<verb>" literals in the review server's code.
AUDIT_WHAT = re.compile(
    r'"((?:login|verdict|reminder|workflow|shop|user|token|zones|export)\.(?!html")[a-z_]+)"'
)
CHANNELS = ("email", "webhook", "mqtt", "sms", "wecom", "dingtalk", "case_push")
CJK = re.compile(r"[\u4e00-\u9fff]")


def template_keys() -> set[str]:
    keys: set[str] = set()
    for template in (ROOT / "templates").glob("*.html"):
        keys.update(LITERAL_KEY.findall(template.read_text("utf-8")))
    return keys


def audit_actions() -> set[str]:
    found: set[str] = set()
    for source in ROOT.rglob("*.py"):
        found.update(AUDIT_WHAT.findall(source.read_text("utf-8")))
        if 'f"verdict.{verdict.value}"' in source.read_text("utf-8"):
            found.update(f"verdict.{v.value}" for v in Verdict)
    return found


CLOSED_SETS = {
    "class": [f"class_{name}" for name in (*COCO_CLASSES, STATIC_OBJECT, SIGNBOARD, "unknown")],
    "event": [f"event_{kind.value}" for kind in IncidentEventKind],
    "camera state": [f"camera_{state.value}" for state in CameraState],
    "node state": [state.value for state in NodeState],
    "scene view": [f"view_{view.value}" for view in SceneView],
    "review status": list(STATUSES),
    "verdict": [verdict.value for verdict in Verdict],
    "reject reason": [reason.value for reason in RejectReason],
    "role": [role.value for role in Role],
    "channel": [f"channel_{channel}" for channel in CHANNELS],
    "escalation step": [f"step_{step.value}" for step in Step],
    "sms delivery": ["delivery_delivered", "delivery_undelivered"],
    "audit action": [f"audit_{what}" for what in sorted(audit_actions())],
    "incident state": ["open", "cleared"],
}


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = (set(CATALOGUES[locale]) for locale in ("zh-CN", "en"))
    assert zh - en == set() and en - zh == set()


def test_the_audit_scan_finds_what_the_code_writes() -> None:
    # Guards the regex above: a scan that found nothing would let every audit key go missing.
    assert {"login.success", "verdict.confirmed", "reminder.sent", "zones.save"} <= audit_actions()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_literal_key_of_the_templates_exists(locale: str) -> None:
    keys = template_keys()
    assert len(keys) > 100, "the template scan found too little"
    assert sorted(keys - set(CATALOGUES[locale])) == []


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("group", sorted(CLOSED_SETS))
def test_every_value_of_a_closed_set_has_a_message(locale: str, group: str) -> None:
    missing = [key for key in CLOSED_SETS[group] if not CATALOGUES[locale].get(key)]
    assert missing == [], f"{locale} has no message for these {group} keys"


def test_chinese_messages_are_chinese_and_english_ones_are_not() -> None:
    # A key copied across without translation is the commonest gap. Names of protocols and
    # formats stay as they are in Chinese too.
    names = re.compile(r"MQTT|Webhook|API|ID|IP|ZIP|JPEG|YAML|SMTP|HMAC|CSV|URL|Enter|\{\w+\}")
    untranslated = [
        key
        for key, text in CATALOGUES["zh-CN"].items()
        if text == CATALOGUES["en"][key] and re.search("[A-Za-z]", names.sub("", text))
    ]
    assert untranslated == []
    chinese_in_english = [key for key, text in CATALOGUES["en"].items() if CJK.search(text)]
    assert chinese_in_english == []


def test_a_missing_key_falls_back_to_english_then_to_the_key() -> None:
    catalog = Catalog()
    assert catalog.translate("zh-CN", "queue") == CATALOGUES["zh-CN"]["queue"]
    assert catalog.translate("zh-CN", "no-such-key") == "no-such-key"
