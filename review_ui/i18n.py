"""Message catalogues per locale (review_ui/locales/*.json) and choosing the request's locale."""

from __future__ import annotations

import json
from importlib import resources

LOCALES = ("zh-CN", "en")


class Catalog:
    def __init__(self) -> None:
        folder = resources.files("review_ui") / "locales"
        self.messages = {
            locale: json.loads((folder / f"{locale}.json").read_text(encoding="utf-8")) for locale in LOCALES
        }

    def translate(self, locale: str, key: str) -> str:
        return self.messages.get(locale, {}).get(key) or self.messages["en"].get(key) or key


def choose_locale(
    query: str | None, user: str | None, cookie: str | None, accept_language: str | None, default: str
) -> str:
    """?lang= beats the user's setting beats the cookie beats Accept-Language beats the default."""
    for candidate in (query, user, cookie):
        if candidate in LOCALES:
            return candidate
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return default
