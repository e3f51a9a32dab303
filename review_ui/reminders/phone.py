"""Phone numbers for SMS: E.164 (+8613912345678) or a mainland mobile's 11 digits (13912345678)."""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-().]")


class PhoneError(ValueError):
    """A phone number SMS cannot be sent to; the message says which form is expected."""


def normalize_phone(text: str) -> str:
    """The number in E.164. Spaces, dashes, dots and brackets are dropped; a bare mainland mobile
    number gets +86; 0086 / 86 prefixes of an 11-digit mainland mobile are read as +86."""
    number = _SEPARATORS.sub("", text.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    if MAINLAND_MOBILE.match(number):
        return "+86" + number
    if number.startswith("86") and MAINLAND_MOBILE.match(number[2:]):
        return "+" + number
    if not E164.match(number):
        raise PhoneError(
            f"not a phone number: {text!r} (expected +<country><number>, e.g. +8613912345678,"
            " or an 11-digit mainland mobile number)"
        )
    if number.startswith("+86") and not MAINLAND_MOBILE.match(number[3:]):
        raise PhoneError(f"not a mainland mobile number: {text!r} (+86 and 11 digits starting 13-19)")
    return number
