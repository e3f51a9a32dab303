"""User administration (admin only): create, role / active, password reset, API tokens."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from review_ui.auth import Principal, Role, UserError
from review_ui.web.context import AppContext
from review_ui.web.render import Notice, render
from review_ui.web.security import client_ip, requirer


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    require = requirer(ctx)
    Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

    def page(
        request: Request,
        user: Principal,
        *,
        error: UserError | Notice | None = None,
        notice: Notice | None = None,
        token: str | None = None,
        status_code: int = 200,
    ) -> Response:
        tokens: dict[str, list[dict[str, object]]] = {}
        for row in ctx.accounts.list_api_tokens():
            tokens.setdefault(str(row["username"]), []).append(row)
        return render(
            ctx,
            request,
            "users.html",
            user,
            status_code=status_code,
            rows=ctx.accounts.list_users(),
            tokens=tokens,
            error=error,
            notice=notice,
            token=token,
        )

    @r.get("/users")
    def users(request: Request, user: Admin) -> Response:
        return page(request, user)

    @r.post("/users")
    def user_create(
        request: Request,
        user: Admin,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        role: Annotated[Role, Form()],
    ) -> Response:
        try:
            ctx.accounts.create_user(username, password, role, user.username, client_ip(request))
        except UserError as exc:
            return page(request, user, error=exc, status_code=422)
        return RedirectResponse("/users", status_code=303)

    @r.post("/users/{username}")
    def user_update(
        request: Request,
        username: str,
        user: Admin,
        role: Annotated[Role, Form()],
        active: Annotated[str, Form()] = "",
    ) -> Response:
        if username == user.username and (role is not Role.ADMIN or not active):
            return page(request, user, error=Notice("cannot_demote_self"), status_code=422)
        try:
            ctx.accounts.update_user(
                username, user.username, role=role, active=bool(active), ip=client_ip(request)
            )
        except UserError as exc:
            raise HTTPException(404, str(exc)) from exc
        return RedirectResponse("/users", status_code=303)

    @r.post("/users/{username}/password")
    def password_reset(
        request: Request,
        username: str,
        user: Admin,
        password: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        if ctx.accounts.get_user(username) is None:
            raise HTTPException(404, f"no user {username!r}")
        try:
            ctx.accounts.reset_password(username, password, user.username, client_ip(request))
        except UserError as exc:
            return page(request, user, error=exc, status_code=422)
        if username == user.username:  # own sessions ended too: log in again
            return RedirectResponse("/login", status_code=303)
        return page(request, user, notice=Notice("password_reset_done", {"username": username}))

    @r.post("/users/{username}/tokens")
    def token_create(
        request: Request, username: str, user: Admin, name: Annotated[str, Form(min_length=1, max_length=64)]
    ) -> Response:
        try:
            token = ctx.accounts.create_api_token(username, name, user.username, client_ip(request))
        except UserError as exc:
            raise HTTPException(404, str(exc)) from exc
        return page(request, user, token=token)

    @r.post("/users/{username}/tokens/{token_id}/revoke")
    def token_revoke(request: Request, username: str, token_id: int, user: Admin) -> Response:
        try:
            ctx.accounts.revoke_api_token(username, token_id, user.username, client_ip(request))
        except UserError as exc:
            raise HTTPException(404, str(exc)) from exc
        return RedirectResponse("/users", status_code=303)

    return r
