"""Reminders, shops, cameras & nodes, zone editor, audit log and users."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from review_ui.auth import Principal, Role, UserError
from review_ui.shops import ShopError, ShopIn
from review_ui.web.context import AppContext
from review_ui.web.render import render
from review_ui.web.security import client_ip, requirer

PAGE = 200


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    require = requirer(ctx)
    Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
    Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

    @r.get("/reminders")
    def reminders(request: Request, user: Viewer) -> Response:
        rows = list(
            ctx.store.read().query(
                "SELECT r.*, i.shop_name FROM reminders r"
                " LEFT JOIN incidents i ON i.incident_id = r.incident_id"
                " ORDER BY r.id DESC LIMIT ?",
                [PAGE],
            )
        )
        return render(ctx, request, "reminders.html", user, rows=rows)

    @r.post("/reminders/{reminder_id}/retry")
    def retry(request: Request, reminder_id: int, user: Admin) -> Response:
        ctx.dispatcher.retry(reminder_id, user.username, client_ip(request))
        ctx.wake_worker()
        return RedirectResponse("/reminders", status_code=303)

    @r.get("/shops")
    def shops(request: Request, user: Viewer) -> Response:
        return render(ctx, request, "shops.html", user, rows=ctx.shops.all(), error=None)

    def shop_from_form(form: dict[str, Any]) -> ShopIn:
        return ShopIn.model_validate(
            {
                k: form.get(k, "")
                for k in ("id", "name", "address", "operator", "contact", "channel", "target", "locale")
            }
        )

    @r.post("/shops")
    async def shop_save(request: Request, user: Admin) -> Response:
        form = dict((await request.form()).items())
        try:
            shop = shop_from_form({k: v for k, v in form.items() if isinstance(v, str)})
            if ctx.shops.get(shop.id) is None:
                ctx.shops.create(shop, user.username, client_ip(request))
            else:
                ctx.shops.update(shop.id, shop, user.username, client_ip(request))
        except (ValidationError, ShopError) as exc:
            message = (
                "; ".join(e["msg"] for e in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
            )
            return render(
                ctx, request, "shops.html", user, status_code=422, rows=ctx.shops.all(), error=message
            )
        return RedirectResponse("/shops", status_code=303)

    @r.post("/shops/{shop_id}/delete")
    def shop_delete(request: Request, shop_id: str, user: Admin) -> Response:
        try:
            ctx.shops.delete(shop_id, user.username, client_ip(request))
        except ShopError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        return RedirectResponse("/shops", status_code=303)

    @r.get("/cameras")
    def cameras(request: Request, user: Viewer) -> Response:
        db = ctx.store.read()
        nodes = list(
            db.query("SELECT node_id, status, health, config_version, updated_at FROM nodes ORDER BY node_id")
        )
        for node in nodes:
            try:
                node["health"] = json.loads(node["health"]) if node["health"] else {}
            except ValueError:
                node["health"] = {}
        cams = list(
            db.query(
                "SELECT node_id, camera_id, state, last_frame_at, snapshot_path, updated_at"
                " FROM cameras ORDER BY node_id, camera_id"
            )
        )
        return render(ctx, request, "cameras.html", user, nodes=nodes, cameras=cams)

    @r.get("/zones/{node_id}/{camera_id}")
    def zone_editor(request: Request, node_id: str, camera_id: str, user: Admin) -> Response:
        latest = ctx.zones.latest(node_id, camera_id)
        document = latest["document"] if latest else json.dumps({"camera_id": camera_id, "zones": []})
        try:
            initial = json.loads(document)
        except ValueError:  # a YAML document stored through the API: show it as text only
            initial = {"camera_id": camera_id, "zones": []}
        has_snapshot = (
            ctx.store.read()
            .execute(
                "SELECT 1 FROM cameras WHERE node_id = ? AND camera_id = ? AND snapshot_path IS NOT NULL",
                [node_id, camera_id],
            )
            .fetchone()
            is not None
        )
        return render(
            ctx,
            request,
            "zone_editor.html",
            user,
            node_id=node_id,
            camera_id=camera_id,
            latest=latest,
            initial=initial,
            has_snapshot=has_snapshot,
        )

    @r.get("/audit")
    def audit_page(request: Request, user: Admin) -> Response:
        before = request.query_params.get("before", "")
        params: list[object] = []
        where = ""
        if before.isdigit():
            where, params = " WHERE id < ?", [int(before)]
        rows = list(
            ctx.store.read().query(
                f"SELECT * FROM audit_log{where} ORDER BY id DESC LIMIT ?", [*params, PAGE]
            )
        )
        return render(ctx, request, "audit.html", user, rows=rows)

    @r.get("/users")
    def users(request: Request, user: Admin) -> Response:
        return render(
            ctx, request, "users.html", user, rows=ctx.accounts.list_users(), error=None, token=None
        )

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
            return render(
                ctx,
                request,
                "users.html",
                user,
                status_code=422,
                rows=ctx.accounts.list_users(),
                error=str(exc),
                token=None,
            )
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
            return render(
                ctx,
                request,
                "users.html",
                user,
                status_code=422,
                rows=ctx.accounts.list_users(),
                error="you cannot demote or disable yourself",
                token=None,
            )
        try:
            ctx.accounts.update_user(
                username, user.username, role=role, active=bool(active), ip=client_ip(request)
            )
        except UserError as exc:
            raise HTTPException(404, str(exc)) from exc
        return RedirectResponse("/users", status_code=303)

    @r.post("/users/{username}/tokens")
    def token_create(
        request: Request, username: str, user: Admin, name: Annotated[str, Form(min_length=1, max_length=64)]
    ) -> Response:
        try:
            token = ctx.accounts.create_api_token(username, name, user.username, client_ip(request))
        except UserError as exc:
            raise HTTPException(404, str(exc)) from exc
        return render(
            ctx, request, "users.html", user, rows=ctx.accounts.list_users(), error=None, token=token
        )

    return r
