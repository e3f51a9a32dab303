"""The password policy: at least 12 characters, not common, not one character, not the user name."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

MIN_PASSWORD = 12


@cache
def common_passwords() -> frozenset[str]:
    text = files("review_ui").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` may not be used, or None."""
    if len(password) < MIN_PASSWORD:
        return f"password must have at least {MIN_PASSWORD} characters"
    if not password.strip() or len(set(password)) == 1:
        return "password must not be one character repeated"
    lowered = password.lower()
    if username and username.lower() in lowered:
        return "password must not contain the user name"
    if lowered in common_passwords():
        return "password is too common: choose another"
    return None
