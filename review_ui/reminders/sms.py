"""What the two SMS channels share: credentials from a file, template variables, receipts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from review_ui.reminders.channels import DeliveryError
from review_ui.reminders.message import ReminderContent
from review_ui.reminders.settings import SmsField, SmsTemplate

LINK_FIELDS = frozenset({SmsField.EVIDENCE})


class CredentialsError(ValueError):
    """The credentials file is missing or malformed; the message never contains the secret."""


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret: str = field(repr=False)  # never in a log line or a traceback's locals repr


def load_credentials(path: Path) -> Credentials:
    """`{"id": "...", "secret": "..."}`: Alibaba AccessKey ID + secret, Tencent SecretId + SecretKey."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read: {type(exc).__name__}") from None
    except ValueError:
        raise CredentialsError(f'{path}: not JSON; expected {{"id": "...", "secret": "..."}}') from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) and raw[k] for k in ("id", "secret")):
        raise CredentialsError(f'{path}: expected {{"id": "...", "secret": "..."}} with non-empty strings')
    return Credentials(raw["id"].strip(), raw["secret"].strip())


@dataclass(frozen=True)
class Receipt:
    """The carrier's delivery report for one SMS."""

    delivered: bool
    detail: str  # the provider's status code / description, e.g. DELIVERED, MK:0001
    received_at: str | None = None  # as the provider writes it (local time on the handset's side)


class SmsChannel(Protocol):
    def send(self, target: str, content: ReminderContent) -> str: ...

    def receipt(self, provider_ref: str, target: str, sent_at: str) -> Receipt | None:
        """The delivery report, or None while the carrier has not reported yet."""
        ...


def template_for(templates: Mapping[str, SmsTemplate], locale: str) -> SmsTemplate:
    template = templates.get(locale) or templates.get("zh-CN")
    if template is None:
        raise DeliveryError(f"sms: no template for locale {locale} and none for zh-CN")
    return template


def template_values(template: SmsTemplate, content: ReminderContent, max_chars: int) -> dict[str, str]:
    """Variable -> value. Providers cap a variable's length (Alibaba: 35 characters for most
    kinds), so text is cut; a cut link would be useless, so links are kept whole."""
    fields = content.fields()
    values: dict[str, str] = {}
    for name, source in template.params.items():
        value = fields[source.value].replace("\n", " ")
        values[name] = value if source in LINK_FIELDS else value[:max_chars]
    return values


def scrub(text: str, *secrets: str) -> str:
    """An error text with every secret (a key, a webhook URL's token) replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
