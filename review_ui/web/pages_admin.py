"""Reminders, cameras & nodes, zone editor and the audit log (shops and users have their own)."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from review_ui import calibration, proposals, queries, zone_versions
from review_ui.auth import Principal, Role
from review_ui.web.context import AppContext
from review_ui.web.params import non_negative_int
from review_ui.web.render import render
from review_ui.web.security import client_ip, requirer
from review_ui.zone_configs import ZoneDocumentInvalid
from review_ui.zone_yaml import editable_text, to_yaml
from zones.loader import ZoneFileError, parse_zone_document
from zones.yaml_source import ConfigFileError, parse_text

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

    @r.get("/cameras")
    def cameras(request: Request, user: Viewer) -> Response:
        nodes, cams = queries.camera_overview(ctx.store.read())
        return render(ctx, request, "cameras.html", user, nodes=nodes, cameras=cams)

    @r.get("/zones/{node_id}/{camera_id}")
    def zone_editor(request: Request, node_id: str, camera_id: str, user: Admin) -> Response:
        db = ctx.store.read()
        latest = ctx.zones.latest(node_id, camera_id)
        edge = zone_versions.edge_zones(db, node_id, camera_id)
        loaded_from = None  # the editor says where a first document came from
        if latest is not None:
            text = editable_text(latest["document"])
        elif edge is not None and edge.document is not None:
            text, loaded_from = edge.document, edge
        else:
            text = to_yaml({"camera_id": camera_id, "zones": []})
        try:
            initial = parse_text(text, "editor").data
        except ConfigFileError:  # the text pane shows it; the drawing starts empty
            initial = None
        if not isinstance(initial, dict):
            initial = {"camera_id": camera_id, "zones": []}
        has_snapshot = (
            db.execute(
                "SELECT 1 FROM cameras WHERE node_id = ? AND camera_id = ? AND snapshot_path IS NOT NULL",
                [node_id, camera_id],
            ).fetchone()
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
            edge=edge,
            loaded_from=loaded_from,
            text=text,
            initial=json.loads(json.dumps(initial, default=str)),  # YAML dates as text, like the API
            history=zone_versions.history(db, node_id, camera_id),
            has_snapshot=has_snapshot,
            proposals=proposals.pending(db, node_id, camera_id),
            suggestions=calibration.suggestions(
                db, node_id, camera_id, _zone_settings(text), ctx.clock.now()
            ),
        )

    @r.post("/zones/{node_id}/{camera_id}/proposals/{proposal_id}/{action}")
    def proposal_decision(
        request: Request, node_id: str, camera_id: str, proposal_id: int, action: str, user: Admin
    ) -> Response:
        """Accept (add the fixture, publish a new version) or dismiss a fixture proposal."""
        if action not in ("accept", "dismiss"):
            raise HTTPException(404, "no such action")
        try:
            if action == "accept":
                ctx.proposals.accept(proposal_id, user.username, client_ip(request))
            else:
                ctx.proposals.dismiss(proposal_id, user.username, client_ip(request))
        except proposals.ProposalError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        except ZoneDocumentInvalid as exc:
            raise HTTPException(422, str(exc)) from exc
        return RedirectResponse(f"/zones/{node_id}/{camera_id}#proposals", status_code=303)

    @r.get("/audit")
    def audit_page(request: Request, user: Admin) -> Response:
        before = non_negative_int(request.query_params.get("before"))
        params: list[object] = []
        where = ""
        if before is not None:
            where, params = " WHERE id < ?", [before]
        rows = list(
            ctx.store.read().query(
                f"SELECT * FROM audit_log{where} ORDER BY id DESC LIMIT ?", [*params, PAGE + 1]
            )
        )
        more = len(rows) > PAGE  # one row beyond the page says whether a next page exists
        return render(ctx, request, "audit.html", user, rows=rows[:PAGE], more=more, paged=before is not None)

    return r


def _zone_settings(text: str) -> dict[str, dict[str, float]]:
    """Each zone's current min_confidence and dwell_s (schema defaults filled in), for calibration."""
    try:
        zone_file = parse_zone_document(text, "editor")
    except ZoneFileError:
        return {}
    return {z.id: {"min_confidence": z.min_confidence, "dwell_s": z.dwell_s} for z in zone_file.zones}
