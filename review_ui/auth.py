"""Users, argon2 password hashes, sessions with a CSRF token, API tokens, login rate limit."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from review_ui import audit
from review_ui.clock import Clock, iso, parse_iso
from review_ui.db import Store
from review_ui.passwords import password_problem
from uplink.database import Database


class Role(enum.StrEnum):
    VIEWER = "viewer"
    INSPECTOR = "inspector"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "inspector": 1, "admin": 2}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user by session cookie (with that session's CSRF token) or by API token."""

    username: str
    role: Role
    locale: str | None
    csrf_token: str | None  # None for bearer-token callers: no cookie, so no CSRF to defend
    via_token: bool = False


class UserError(Exception):
    """A user-management request that cannot be done (shown to the admin / CLI user).

    `key` and `params` give the pages the same sentence from the catalogue, in their language."""

    def __init__(self, message: str, key: str = "", **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


_hasher = PasswordHasher()
# Verifying against this keeps an unknown user as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("curbwatch-timing-equaliser")


def _check_password(password: str, username: str) -> None:
    problem = password_problem(password, username)
    if problem:
        raise UserError(problem.message, problem.key, **problem.params)


def _store_password(db: Database, username: str, password: str) -> int:
    """The new hash; every session of the user ends (API tokens stay). Returns how many ended."""
    db.execute("UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), username])
    return int(db.execute("DELETE FROM sessions WHERE username = ?", [username]).rowcount)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, store: Store, clock: Clock, session_ttl_h: float) -> None:
        self.store = store
        self.clock = clock
        self.session_ttl = timedelta(hours=session_ttl_h)

    # users -------------------------------------------------------------
    def create_user(self, username: str, password: str, role: Role, by: str, ip: str = "") -> None:
        username = username.strip()
        if not username or len(username) > 64 or not username.isprintable():
            raise UserError("username must be 1-64 printable characters", "username_invalid")
        _check_password(password, username)
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                raise UserError(f"user {username!r} exists", "user_exists", username=username)
            db.execute(
                "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                [username, _hasher.hash(password), role.value, iso(self.clock.now())],
            )
            audit.record(db, self.clock, by, "user.create", username, {"role": role.value}, ip)

    def update_user(
        self,
        username: str,
        by: str,
        *,
        role: Role | None = None,
        active: bool | None = None,
        password: str | None = None,
        ip: str = "",
    ) -> None:
        if password is not None:
            _check_password(password, username)
        with self.store.write() as db:
            if not db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                raise UserError(f"no user {username!r}", "no_such_user", username=username)
            detail: dict[str, object] = {}
            if role is not None:
                db.execute("UPDATE users SET role = ? WHERE username = ?", [role.value, username])
                detail["role"] = role.value
            if active is not None:
                db.execute("UPDATE users SET active = ? WHERE username = ?", [int(active), username])
                detail["active"] = active
                if not active:
                    db.execute("DELETE FROM sessions WHERE username = ?", [username])
            if password is not None:
                _store_password(db, username, password)
                detail["password"] = "changed"
            audit.record(db, self.clock, by, "user.update", username, detail, ip)

    def reset_password(self, username: str, password: str, by: str, ip: str = "") -> None:
        """An admin sets a new password; the user's open sessions end (API tokens stay)."""
        _check_password(password, username)
        with self.store.write() as db:
            if not db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                raise UserError(f"no user {username!r}", "no_such_user", username=username)
            ended = _store_password(db, username, password)
            audit.record(db, self.clock, by, "user.password_reset", username, {"sessions_ended": ended}, ip)

    def change_own_password(self, username: str, current: str, new: str, ip: str = "") -> None:
        """The user changes their own password: the current one must be right; their other
        sessions end (the audit log records it)."""
        if self.verify(username, current) is None:
            raise UserError("the current password is not right", "current_password_wrong")
        _check_password(new, username)
        with self.store.write() as db:
            ended = _store_password(db, username, new)
            audit.record(
                db, self.clock, username, "user.password_change", username, {"sessions_ended": ended}, ip
            )

    def set_locale(self, username: str, locale: str | None) -> None:
        with self.store.write() as db:
            db.execute("UPDATE users SET locale = ? WHERE username = ?", [locale, username])

    def get_user(self, username: str) -> dict[str, object] | None:
        rows = list(
            self.store.read().query(
                "SELECT username, role, locale, active, created_at FROM users WHERE username = ?", [username]
            )
        )
        return rows[0] if rows else None

    def list_users(self) -> list[dict[str, object]]:
        return list(
            self.store.read().query(
                "SELECT username, role, locale, active, created_at FROM users ORDER BY username"
            )
        )

    # login / sessions -------------------------------------------------
    def verify(self, username: str, password: str) -> Principal | None:
        row = (
            self.store.read()
            .execute("SELECT password_hash, role, locale, active FROM users WHERE username = ?", [username])
            .fetchone()
        )
        stored = row[0] if row else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row[3]:
            return None
        return Principal(username, Role(row[1]), row[2], None)

    def open_session(self, principal: Principal, ip: str) -> tuple[str, str]:
        """Returns (cookie token, csrf token); only the token's digest is stored."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.store.write() as db:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", [iso(now)])
            db.execute(
                "INSERT INTO sessions (token_hash, username, csrf_token, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [token_digest(token), principal.username, csrf, iso(now), iso(now + self.session_ttl)],
            )
            audit.record(db, self.clock, principal.username, "login.success", principal.username, {}, ip)
        return token, csrf

    def record_login_failure(self, username: str, ip: str, why: str) -> None:
        with self.store.write() as db:
            audit.record(db, self.clock, username[:64], "login.failure", username[:64], {"why": why}, ip)

    def close_session(self, token: str) -> None:
        with self.store.write() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", [token_digest(token)])

    def from_session(self, token: str) -> Principal | None:
        row = (
            self.store.read()
            .execute(
                "SELECT u.username, u.role, u.locale, s.csrf_token, s.expires_at FROM sessions s"
                " JOIN users u ON u.username = s.username WHERE s.token_hash = ? AND u.active = 1",
                [token_digest(token)],
            )
            .fetchone()
        )
        if row is None or parse_iso(row[4]) <= self.clock.now():
            return None
        return Principal(row[0], Role(row[1]), row[2], row[3])

    # API tokens ---------------------------------------------------------
    def create_api_token(self, username: str, name: str, by: str, ip: str = "") -> str:
        token = "cwt_" + secrets.token_urlsafe(32)
        with self.store.write() as db:
            if not db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                raise UserError(f"no user {username!r}", "no_such_user", username=username)
            db.execute(
                "INSERT INTO api_tokens (name, token_hash, username, created_at) VALUES (?, ?, ?, ?)",
                [name, token_digest(token), username, iso(self.clock.now())],
            )
            audit.record(db, self.clock, by, "token.create", username, {"name": name}, ip)
        return token

    def list_api_tokens(self) -> list[dict[str, object]]:
        """Every token (never the secret, only its name), newest first, revoked ones included."""
        return list(
            self.store.read().query(
                "SELECT id, name, username, created_at, revoked_at FROM api_tokens ORDER BY id DESC"
            )
        )

    def revoke_api_token(self, username: str, token_id: int, by: str, ip: str = "") -> None:
        """Revoke one of `username`'s tokens (idempotent); it stops working at once."""
        with self.store.write() as db:
            row = db.execute(
                "SELECT name, revoked_at FROM api_tokens WHERE id = ? AND username = ?", [token_id, username]
            ).fetchone()
            if row is None:
                raise UserError(f"no token {token_id} for user {username!r}")
            if row[1] is not None:
                return  # already revoked: nothing changes, nothing to audit
            db.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", [iso(self.clock.now()), token_id])
            audit.record(
                db, self.clock, by, "token.revoke", username, {"token_id": token_id, "name": row[0]}, ip
            )

    def from_api_token(self, token: str) -> Principal | None:
        row = (
            self.store.read()
            .execute(
                "SELECT u.username, u.role, u.locale FROM api_tokens t"
                " JOIN users u ON u.username = t.username"
                " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.active = 1",
                [token_digest(token)],
            )
            .fetchone()
        )
        if row is None:
            return None
        return Principal(row[0], Role(row[1]), row[2], None, via_token=True)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


class LoginLimiter:
    """Failed logins in a sliding window, counted twice: per account (`max_failures`, from any
    address: a guesser with many addresses) and per client address (`max_client_failures`,
    across accounts: one password sprayed over many users). Either limit blocks. Counted in the
    database (login_failures), so every review process behind one proxy sees the same count."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        max_failures: int,
        window_s: float,
        *,
        max_client_failures: int | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_failures = max_failures
        self.max_client_failures = max_client_failures or max_failures * 4
        self.window = timedelta(seconds=window_s)

    def _count(self, kind: str, subject: str) -> int:
        cutoff = iso(self.clock.now() - self.window)
        return int(
            self.store.read()
            .execute(
                "SELECT count(*) FROM login_failures WHERE kind = ? AND subject = ? AND at >= ?",
                [kind, subject, cutoff],
            )
            .fetchone()[0]
        )

    def blocked(self, ip: str, username: str) -> bool:
        account = self._count("user", username.lower())
        client = self._count("ip", ip)
        return account >= self.max_failures or client >= self.max_client_failures

    def failed(self, ip: str, username: str) -> None:
        now = self.clock.now()
        with self.store.write() as db:
            # the table holds one window of failures: bounded by live attackers only
            db.execute("DELETE FROM login_failures WHERE at < ?", [iso(now - self.window)])
            db.execute(
                "INSERT INTO login_failures (kind, subject, at) VALUES ('user', ?, ?), ('ip', ?, ?)",
                [username.lower(), iso(now), ip, iso(now)],
            )

    def succeeded(self, ip: str, username: str) -> None:
        """The account's owner got in: its count clears; the address keeps its record."""
        with self.store.write() as db:
            db.execute("DELETE FROM login_failures WHERE kind = 'user' AND subject = ?", [username.lower()])
