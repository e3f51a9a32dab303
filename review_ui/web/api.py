"""JSON API under /api/v1: session cookie + X-CSRF-Token header, or `Authorization: Bearer`."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import os
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from review_ui import queries
from review_ui.auth import Principal, Role
from review_ui.exports import ExportError
from review_ui.proposals import ProposalError
from review_ui.review import ClearedAction, RejectReason, ReviewError, Verdict
from review_ui.shops import ShopError, ShopIn
from review_ui.web.context import AppContext
from review_ui.web.security import client_ip, requirer


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    reason: RejectReason | None = Field(None, description="required when rejecting")
    note: str = Field("", max_length=2000)
    cleared_action: ClearedAction | None = Field(
        None,
        description="required to confirm when the edge already reports the sidewalk cleared: "
        "`remind` anyway, or `close` as self-rectified (no reminder)",
    )
    propose_fixture: bool = Field(
        False, description="with a rejection: propose the object's box as a fixture of its zone"
    )


class VerdictOut(BaseModel):
    incident_id: str
    status: str
    reminder_ids: list[int]
    decided: list[str] = Field(description="every occurrence of the case this verdict decided")
    undo_s: float = Field(description="seconds the verdict can be undone (POST .../undo)")


class UndoOut(BaseModel):
    reopened: list[str] = Field(description="the occurrences back in the queue")


def review_http_error(exc: ReviewError) -> HTTPException:
    """The reviewer's refusal as JSON: {"detail": {"message", "code"}} when it has a code."""
    if exc.code:
        return HTTPException(exc.status_code, {"message": str(exc), "code": exc.code})
    return HTTPException(exc.status_code, str(exc))


class Changes(BaseModel):
    token: str


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["review"])
    require = requirer(ctx)
    Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
    Inspector = Annotated[Principal, Depends(require(Role.INSPECTOR))]
    Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
    Id = Annotated[str, Query(max_length=64)]

    @r.get("/incidents")
    def list_incidents(
        _user: Viewer,
        camera: Id = "",
        zone: Id = "",
        shop: Id = "",
        status: Annotated[
            str, Query(pattern="^(|pending|confirmed|reminded|rectified|escalated|rejected)$")
        ] = "pending",
        date_from: Annotated[str, Query(alias="from", pattern=r"^(|\d{4}-\d{2}-\d{2})$")] = "",
        date_to: Annotated[str, Query(alias="to", pattern=r"^(|\d{4}-\d{2}-\d{2})$")] = "",
        page: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        flt = queries.QueueFilter(camera, zone, shop, status, date_from, date_to, page)
        result = queries.queue(ctx.store.read(), flt)
        return {
            "incidents": result.rows,
            "counts": result.counts,
            "total": result.total,
            "page": result.page,
            "has_more": result.has_more,
        }

    @r.get("/incidents/{incident_id}")
    def get_incident(incident_id: str, _user: Viewer) -> dict[str, Any]:
        db = ctx.store.read()
        row = queries.incident(db, incident_id)
        if row is None:
            raise HTTPException(404, "no such incident")
        return {
            "incident": row,
            "events": queries.events(db, incident_id),
            "verdicts": queries.verdicts(db, incident_id),
            "reminders": queries.reminders_for(db, incident_id),
        }

    @r.post("/incidents/{incident_id}/verdict")
    def post_verdict(request: Request, incident_id: str, body: VerdictIn, user: Inspector) -> VerdictOut:
        try:
            result = ctx.reviewer.give_verdict(
                incident_id,
                body.verdict,
                body.reason if body.verdict is Verdict.REJECTED else None,
                body.note,
                user.username,
                client_ip(request),
                cleared_action=body.cleared_action,
                propose_fixture=body.propose_fixture,
            )
        except ProposalError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        except ReviewError as exc:
            raise review_http_error(exc) from exc
        ctx.wake_worker()
        return VerdictOut(
            incident_id=result.incident_id,
            status=result.status,
            reminder_ids=result.reminder_ids,
            decided=result.decided,
            undo_s=ctx.config.reminders.undo_s,
        )

    @r.post("/incidents/{incident_id}/undo")
    def post_undo(request: Request, incident_id: str, user: Inspector) -> UndoOut:
        """Take the last verdict back while its reminder has not left (`reminders.undo_s`)."""
        try:
            reopened = ctx.reviewer.undo_verdict(
                incident_id, user.username, user.role is Role.ADMIN, client_ip(request)
            )
        except ReviewError as exc:
            raise review_http_error(exc) from exc
        ctx.wake_worker()
        return UndoOut(reopened=reopened)

    @r.get("/changes")
    def changes(_user: Viewer) -> Changes:
        """A cheap token that changes whenever the queue may have; the queue page polls it."""
        return Changes(token=queries.change_token(ctx.store.read()))

    @r.get(
        "/exports/verdicts",
        response_class=FileResponse,
        responses={200: {"content": {"application/zip": {}}, "description": "manifest.jsonl + images/"}},
    )
    def export_verdicts(
        request: Request,
        user: Admin,
        since: Annotated[str, Query(max_length=32, description="UTC date or time; '' = all")] = "",
    ) -> Response:
        """Every verdict (confirmed and rejected) since `since` as training data: a ZIP with
        manifest.jsonl and the evidence JPEGs. Audit-logged."""
        handle, name = tempfile.mkstemp(prefix="curbwatch-export-", suffix=".zip")
        try:
            with os.fdopen(handle, "wb") as out:
                ctx.exporter.write(out, since, user.username, client_ip(request))
        except ExportError as exc:
            os.unlink(name)
            raise HTTPException(422, str(exc)) from exc
        except BaseException:
            os.unlink(name)
            raise
        stamp = ctx.clock.now().strftime("%Y%m%dT%H%M%SZ")
        return FileResponse(
            name,
            media_type="application/zip",
            filename=f"curbwatch-verdicts-{stamp}.zip",
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(os.unlink, name),
        )

    @r.get("/shops")
    def list_shops(_user: Viewer) -> list[dict[str, Any]]:
        return ctx.shops.all()

    @r.get("/shops/{shop_id}")
    def get_shop(shop_id: str, _user: Viewer) -> dict[str, Any]:
        shop = ctx.shops.get(shop_id)
        if shop is None:
            raise HTTPException(404, "no such shop")
        return shop

    @r.post("/shops", status_code=201)
    def create_shop(request: Request, shop: ShopIn, user: Admin) -> dict[str, Any]:
        try:
            ctx.shops.create(shop, user.username, client_ip(request))
        except ShopError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        return shop.model_dump()

    @r.put("/shops/{shop_id}")
    def update_shop(request: Request, shop_id: str, shop: ShopIn, user: Admin) -> dict[str, Any]:
        try:
            ctx.shops.update(shop_id, shop, user.username, client_ip(request))
        except ShopError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        return shop.model_dump()

    @r.delete("/shops/{shop_id}", status_code=204)
    def delete_shop(request: Request, shop_id: str, user: Admin) -> Response:
        try:
            ctx.shops.delete(shop_id, user.username, client_ip(request))
        except ShopError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        return Response(status_code=204)

    return r
