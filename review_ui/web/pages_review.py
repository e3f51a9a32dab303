"""The inspector's pages: queue, incident, verdict forms, evidence and snapshot images."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from review_ui import cases, evidence_view, queries
from review_ui.auth import Principal, Role
from review_ui.evidence_links import LinkCheck
from review_ui.files import stored_file
from review_ui.proposals import ProposalError
from review_ui.review import ClearedAction, RejectReason, ReviewError, Verdict
from review_ui.web.context import AppContext
from review_ui.web.params import non_negative_int
from review_ui.web.render import render
from review_ui.web.security import client_ip, requirer
from review_ui.zone_configs import ZoneConfigs
from review_ui.zone_versions import incident_document
from uplink.database import Database

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def queue_filter(request: Request) -> queries.QueueFilter:
    q = request.query_params

    def text(name: str) -> str:
        return q.get(name, "")[:64]

    status = q.get("status", "pending")
    page = q.get("page", "0")
    return queries.QueueFilter(
        camera_id=text("camera"),
        zone_id=text("zone"),
        shop_id=text("shop"),
        status=status if status in (*queries.STATUSES, "") else "pending",
        date_from=text("from") if DATE.match(text("from")) else "",
        date_to=text("to") if DATE.match(text("to")) else "",
        page=non_negative_int(page, 999_999) or 0,
    )


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    require = requirer(ctx)
    Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
    Inspector = Annotated[Principal, Depends(require(Role.INSPECTOR))]

    @r.get("/queue")
    def queue_page(request: Request, user: Viewer) -> Response:
        flt = queue_filter(request)
        db = ctx.store.read()
        page = queries.queue(db, flt)
        template = "queue_rows.html" if request.query_params.get("partial") == "1" else "queue.html"
        return render(
            ctx,
            request,
            template,
            user,
            page=page,
            flt=flt,
            statuses=queries.STATUSES,
            options=queries.filter_options(db),
            change_token=queries.change_token(db),
        )

    @r.get("/incidents/{incident_id}")
    def incident_page(request: Request, incident_id: str, user: Viewer) -> Response:
        db = ctx.store.read()
        row = queries.incident(db, incident_id)
        if row is None:
            return render(ctx, request, "error.html", user, status_code=404, message="not_found")
        occurrences = queries.case_occurrences(db, incident_id)
        zone_polygons = incident_zone_polygons(db, row, ctx.zones)
        return render(
            ctx,
            request,
            "incident.html",
            user,
            incident=row,
            events=queries.events(db, incident_id),
            verdicts=queries.verdicts(db, incident_id),
            reminders=queries.reminders_for(db, incident_id),
            history=queries.shop_history(db, row["shop_id"]),
            shop=ctx.shops.get(row["shop_id"]),
            reasons=[reason.value for reason in RejectReason],
            evidence_objects=evidence_view.evidence_objects(row.get("evidence_objects")),
            evidence_size=evidence_view.picture_size(stored_file(ctx.evidence_dir, row.get("evidence_path"))),
            has_evidence=stored_file(ctx.evidence_dir, row.get("evidence_path")) is not None,
            has_before_now=stored_file(ctx.evidence_dir, row.get("before_now_path")) is not None,
            zone_polygons=zone_polygons,
            zone_name=next((z.get("name") for z in zone_polygons if z["hit"]), None),
            case=cases.case_of(db, incident_id),
            occurrences=occurrences,
            head_cleared=_head_cleared(occurrences, row),
            undo=ctx.reviewer.undo_window(incident_id),
            reject_open=request.query_params.get("reject") == "1",
        )

    @r.post("/incidents/{incident_id}/verdict")
    def verdict_form(
        request: Request,
        incident_id: str,
        user: Inspector,
        verdict: Annotated[Verdict, Form()],
        reason: Annotated[RejectReason | None, Form()] = None,
        note: Annotated[str, Form(max_length=2000)] = "",
        next: Annotated[str, Form(max_length=20)] = "incident",
        cleared_action: Annotated[ClearedAction | None, Form()] = None,
        propose_fixture: Annotated[str, Form(max_length=1)] = "",
    ) -> Response:
        try:
            ctx.reviewer.give_verdict(
                incident_id,
                verdict,
                reason if verdict is Verdict.REJECTED else None,
                note,
                user.username,
                client_ip(request),
                cleared_action=cleared_action,
                propose_fixture=propose_fixture == "1",
            )
        except ProposalError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        except ReviewError as exc:
            if exc.code == "needs_cleared_action":  # cleared while the page was open: it now asks
                return RedirectResponse(f"/incidents/{incident_id}#decision", status_code=303)
            raise HTTPException(exc.status_code, str(exc)) from exc
        ctx.wake_worker()
        if next == "queue":
            return RedirectResponse("/queue", status_code=303)
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    @r.post("/incidents/{incident_id}/undo")
    def undo_form(request: Request, incident_id: str, user: Inspector) -> Response:
        try:
            ctx.reviewer.undo_verdict(incident_id, user.username, user.role is Role.ADMIN, client_ip(request))
        except ReviewError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        ctx.wake_worker()
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    def evidence_file(incident_id: str, column: str = "evidence_path") -> Path:
        # `column` is one of two names from this module, never from the request.
        row = (
            ctx.store.read()
            .execute(f"SELECT {column} FROM incidents WHERE incident_id = ?", [incident_id])
            .fetchone()
        )
        path = stored_file(ctx.evidence_dir, row[0] if row else None)
        if path is None:
            raise HTTPException(404, "no evidence")
        return path

    @r.get("/evidence/{incident_id}")
    def evidence(incident_id: str, _user: Viewer) -> Response:
        path = evidence_file(incident_id)
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @r.get("/evidence/{incident_id}/before-now")
    def before_now(incident_id: str, _user: Viewer) -> Response:
        """The zone as the edge learned it clean (BEFORE) beside the same area now (NOW)."""
        path = evidence_file(incident_id, "before_now_path")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @r.get("/evidence/{incident_id}/objects/{number}")
    def evidence_object(incident_id: str, number: int, _user: Viewer) -> Response:
        """A close-up of object `number` (its tag in the picture), cut from the stored evidence."""
        query = "SELECT evidence_path, evidence_objects FROM incidents WHERE incident_id = ?"
        row = ctx.store.read().execute(query, [incident_id]).fetchone()
        path = stored_file(ctx.evidence_dir, row[0] if row else None)
        objects = evidence_view.evidence_objects(row[1]) if row else None
        if path is None or not objects or not 1 <= number <= len(objects):
            raise HTTPException(404, "no such object in the evidence")
        try:
            close_up = evidence_view.object_close_up(path.read_bytes(), objects[number - 1])
        except evidence_view.EvidenceUnreadable as exc:
            raise HTTPException(500, str(exc)) from exc
        return Response(close_up, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @r.get("/e/{incident_id}")
    def evidence_link(incident_id: str, exp: str = "", sig: str = "") -> Response:
        """A reminder's signed link: this incident's image only, no login, until it expires."""
        check = ctx.links.check(incident_id, exp[:16], sig[:128])
        if check is not LinkCheck.VALID:
            raise HTTPException(403, "link expired" if check is LinkCheck.EXPIRED else "invalid link")
        path = evidence_file(incident_id)
        return FileResponse(
            path,
            media_type="image/jpeg",
            headers={
                "Cache-Control": "private, max-age=300",
                "Referrer-Policy": "no-referrer",
                "X-Robots-Tag": "noindex",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @r.get("/snapshots/{node_id}/{camera_id}")
    def snapshot(node_id: str, camera_id: str, _user: Viewer) -> Response:
        row = (
            ctx.store.read()
            .execute(
                "SELECT snapshot_path FROM cameras WHERE node_id = ? AND camera_id = ?", [node_id, camera_id]
            )
            .fetchone()
        )
        path = stored_file(ctx.evidence_dir, row[0] if row else None)
        if path is None:
            raise HTTPException(404, "no snapshot")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})

    return r


def _head_cleared(occurrences: list[dict[str, Any]], incident: dict[str, Any]) -> str | None:
    """When the case's newest undecided occurrence was cleared on the street, else None."""
    undecided = [o for o in occurrences if o["status"] == "pending"] or [incident]
    head = undecided[-1]
    return (head.get("cleared_at") or head.get("updated_at")) if head["state"] == "cleared" else None


def incident_zone_polygons(
    db: Database, incident: dict[str, Any], zones: ZoneConfigs
) -> list[dict[str, object]]:
    """The zones the edge ran when it raised the incident (incident/3); today's when unknown."""
    document = incident_document(db, incident)
    if document is None:
        latest = zones.latest(incident["node_id"], incident["camera_id"])
        document = latest["document"] if latest else None
    return _zone_polygons(document, incident["zone_id"])


def _zone_polygons(document: str | None, zone_id: str) -> list[dict[str, object]]:
    """Polygons of the camera's zones (the incident's one first) for drawing over the evidence."""
    if not document:
        return []
    from zones.loader import ZoneFileError, parse_zone_document

    try:
        zone_file = parse_zone_document(document, "stored")
    except ZoneFileError:
        return []
    shapes: list[dict[str, object]] = [
        {
            "id": z.id,
            "kind": str(z.kind),
            "hit": z.id == zone_id,
            "name": z.name,
            "points": " ".join(f"{x * 1000:.1f},{y * 1000:.1f}" for x, y in z.polygon),
        }
        for z in zone_file.zones
    ]
    return sorted(shapes, key=lambda s: not s["hit"])
