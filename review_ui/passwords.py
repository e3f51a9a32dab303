"""The password policy: at least 12 characters, not common, not one character, not the user name."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

MIN_PASSWORD = 12


@dataclass(frozen=True)
class PasswordProblem:
    """Why a password is refused: `message` in English (CLI, logs), `key` for the pages' catalogue."""

    key: str
    message: str
    params: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


@cache
def common_passwords() -> frozenset[str]:
    text = files("review_ui").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problem(password: str, username: str = "") -> PasswordProblem | None:
    """Why `password` may not be used, or None."""
    if len(password) < MIN_PASSWORD:
        return PasswordProblem(
            "password_too_short",
            f"password must have at least {MIN_PASSWORD} characters",
            {"n": MIN_PASSWORD},
        )
    if not password.strip() or len(set(password)) == 1:
        return PasswordProblem("password_one_character", "password must not be one character repeated")
    lowered = password.lower()
    if username and username.lower() in lowered:
        return PasswordProblem("password_has_username", "password must not contain the user name")
    if lowered in common_passwords():
        return PasswordProblem("password_too_common", "password is too common: choose another")
    return None
