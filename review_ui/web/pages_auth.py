"""Login, logout and the user's language setting."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from review_ui.auth import Principal, Role, UserError
from review_ui.i18n import LOCALES
from review_ui.web.context import AppContext
from review_ui.web.render import render
from review_ui.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    client_ip,
    login_csrf_ok,
    principal_of,
    requirer,
)


def safe_next(value: str | None) -> str:
    """Only same-site paths: never '//host' or a scheme (open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/queue"


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    require = requirer(ctx)
    secure = ctx.config.secure_cookies

    def login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(
            ctx,
            request,
            "login.html",
            None,
            status_code=status_code,
            error=error,
            login_csrf=token,
            next=safe_next(request.query_params.get("next")),
        )
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure)
        return response

    @r.get("/login")
    def login_form(request: Request) -> Response:
        if principal_of(ctx, request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return login_page(request)

    @r.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/queue",
    ) -> Response:
        ip = client_ip(request)
        if not login_csrf_ok(request, csrf_token):
            return login_page(request, "forbidden", 403)
        if ctx.limiter.blocked(ip, username):
            ctx.accounts.record_login_failure(username, ip, "rate-limited")
            return login_page(request, "login_blocked", 429)
        principal = ctx.accounts.verify(username, password)
        if principal is None:
            ctx.limiter.failed(ip, username)
            ctx.accounts.record_login_failure(username, ip, "bad credentials")
            return login_page(request, "login_failed", 401)
        ctx.limiter.succeeded(ip, username)
        token, _csrf = ctx.accounts.open_session(principal, ip)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=secure,
            max_age=int(ctx.config.session_ttl_h * 3600),
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @r.post("/logout")
    def logout(request: Request, _user: Annotated[Principal, Depends(require(Role.VIEWER))]) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            ctx.accounts.close_session(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @r.post("/settings/locale")
    def set_locale(
        user: Annotated[Principal, Depends(require(Role.VIEWER))],
        locale: Annotated[str, Form()],
        back: Annotated[str, Form()] = "/queue",
    ) -> Response:
        if locale in LOCALES:
            ctx.accounts.set_locale(user.username, locale)
        return RedirectResponse(safe_next(back), status_code=303)

    @r.get("/account/password")
    def password_page(
        request: Request, user: Annotated[Principal, Depends(require(Role.VIEWER))]
    ) -> Response:
        return render(ctx, request, "account.html", user)

    @r.post("/account/password")
    def change_password(
        request: Request,
        user: Annotated[Principal, Depends(require(Role.VIEWER))],
        current: Annotated[str, Form(max_length=1024)],
        new: Annotated[str, Form(max_length=1024)],
        repeat: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        """Self-service: the current password, then the new one twice; every session then ends."""
        if new != repeat:
            return render(ctx, request, "account.html", user, status_code=422, error_key="passwords_differ")
        try:
            ctx.accounts.change_own_password(user.username, current, new, client_ip(request))
        except UserError as exc:
            return render(ctx, request, "account.html", user, status_code=422, error=exc)
        response = RedirectResponse("/login?changed=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @r.get("/")
    def home() -> Response:
        return RedirectResponse("/queue", status_code=303)

    return r
