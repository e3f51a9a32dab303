"""Who is calling and may they: session cookie or bearer token, roles, CSRF."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Request

from review_ui.auth import Principal, Role, csrf_matches
from review_ui.web.context import AppContext

SESSION_COOKIE = "cw_session"
LOGIN_CSRF_COOKIE = "cw_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """Pages answer with a redirect to /login, the API with 401."""

    def __init__(self, next_url: str, api: bool) -> None:
        self.next_url = next_url
        self.api = api


class Forbidden(Exception):
    def __init__(self, message: str = "forbidden") -> None:
        self.message = message


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def principal_of(ctx: AppContext, request: Request) -> Principal | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and is_api(request):
        return ctx.accounts.from_api_token(auth[7:].strip())
    token = request.cookies.get(SESSION_COOKIE)
    return ctx.accounts.from_session(token) if token else None


def requirer(ctx: AppContext) -> Callable[[Role], Callable[[Request], Awaitable[Principal]]]:
    """`require(Role.INSPECTOR)` -> a dependency that authenticates, authorises and, for
    state-changing methods, checks the CSRF token (form field or X-CSRF-Token header)."""

    def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
        async def dependency(request: Request) -> Principal:
            principal = principal_of(ctx, request)
            if principal is None:
                nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRequired(quote(nxt, safe="/?=&"), is_api(request))
            if request.method not in ("GET", "HEAD", "OPTIONS") and not principal.via_token:
                given = request.headers.get(CSRF_HEADER)
                if given is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")
                ):
                    form = await request.form()
                    value = form.get(CSRF_FIELD)
                    given = value if isinstance(value, str) else None
                if not csrf_matches(principal.csrf_token, given):
                    raise Forbidden("missing or wrong CSRF token")
            if not principal.role.allows(role):
                raise Forbidden(f"needs role {role.value}")
            return principal

        return dependency

    return require


def login_csrf_ok(request: Request, given: str) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(cookie) and bool(given) and hmac.compare_digest(cookie, given)
