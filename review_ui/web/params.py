"""Strict parsing of numeric query parameters: ASCII digits only, bounded, else None.

`str.isdigit()` accepts "²" and other Unicode digits that `int()` refuses, and unbounded
digits overflow SQLite's 64-bit integers; both were HTTP 500s.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")  # fits a signed 64-bit integer


def non_negative_int(text: str | None, maximum: int = 2**62) -> int | None:
    if text is None or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None
