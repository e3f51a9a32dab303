"""The shop registry pages: list, add, edit in place (prefilled form), delete."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from review_ui.auth import Principal, Role
from review_ui.shops import COLUMNS, ShopError, ShopIn
from review_ui.web.context import AppContext
from review_ui.web.render import render
from review_ui.web.security import client_ip, requirer

TEXT_FIELDS = ("address", "operator", "contact")


def field_errors(exc: ValidationError, form: dict[str, str]) -> dict[str, str]:
    """Pydantic's errors as catalogue keys per form field (the page translates them)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else "target"  # the one model-level rule is about the target
        if name in TEXT_FIELDS:
            key = "invalid_text"
        elif name == "target" and not loc and form.get("channel") in ("email", "webhook", "mqtt", "sms"):
            key = f"invalid_target_{form['channel']}"
        else:
            key = f"invalid_{name}"
        errors.setdefault(name, key)
    return errors


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    require = requirer(ctx)
    Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
    Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

    def page(
        request: Request,
        user: Principal,
        *,
        form: dict[str, Any] | None = None,
        editing: str | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        return render(
            ctx,
            request,
            "shops.html",
            user,
            status_code=status_code,
            rows=ctx.shops.all(),
            form=form or {"channel": "email", "locale": ctx.config.locale},
            editing=editing,
            errors=errors or {},
        )

    async def read_form(request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: v for k in COLUMNS if isinstance(v := form.get(k, ""), str)}

    @r.get("/shops")
    def shops(request: Request, user: Viewer) -> Response:
        return page(request, user)

    @r.get("/shops/{shop_id}/edit")
    def shop_edit(request: Request, shop_id: str, user: Admin) -> Response:
        shop = ctx.shops.get(shop_id)
        if shop is None:
            raise HTTPException(404, "no such shop")
        return page(request, user, form=shop, editing=shop_id)

    @r.post("/shops")
    async def shop_create(request: Request, user: Admin) -> Response:
        form = await read_form(request)
        try:
            ctx.shops.create(ShopIn.model_validate(form), user.username, client_ip(request))
        except ValidationError as exc:
            return page(request, user, form=form, errors=field_errors(exc, form), status_code=422)
        except ShopError:
            return page(request, user, form=form, errors={"id": "shop_exists"}, status_code=422)
        return RedirectResponse("/shops", status_code=303)

    @r.post("/shops/{shop_id}")
    async def shop_update(request: Request, shop_id: str, user: Admin) -> Response:
        form = {**await read_form(request), "id": shop_id}  # the id is the key: not editable
        try:
            ctx.shops.update(shop_id, ShopIn.model_validate(form), user.username, client_ip(request))
        except ValidationError as exc:
            errors = field_errors(exc, form)
            return page(request, user, form=form, editing=shop_id, errors=errors, status_code=422)
        except ShopError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        return RedirectResponse("/shops", status_code=303)

    @r.post("/shops/{shop_id}/delete")
    def shop_delete(request: Request, shop_id: str, user: Admin) -> Response:
        try:
            ctx.shops.delete(shop_id, user.username, client_ip(request))
        except ShopError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        return RedirectResponse("/shops", status_code=303)

    return r
