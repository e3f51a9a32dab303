"""JSON API of the zone editor under /api/v1/zones/{node}/{camera}: check, diff, save, revert."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from review_ui import zone_versions
from review_ui.auth import Principal, Role
from review_ui.web.context import AppContext
from review_ui.web.render import locale_of
from review_ui.web.security import client_ip, requirer
from review_ui.zone_configs import SavedConfig, UnknownVersion, ZoneDocumentInvalid
from review_ui.zone_problems import localise
from review_ui.zone_yaml import merge
from uplink.messages import MAX_ZONE_DOCUMENT_CHARS
from zones.yaml_source import ConfigFileError, parse_text

Document = Annotated[
    str, Field(max_length=MAX_ZONE_DOCUMENT_CHARS, description="zone file text (YAML or JSON)")
]


class ZoneDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: Document


class ZoneCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: Document
    data: dict[str, Any] | None = Field(
        None,
        description="the editor's drawing as the whole document: written into `document` first, "
        "keeping every key, comment and number it does not change",
    )


class ZoneSaved(BaseModel):
    node_id: str
    camera_id: str
    version: int
    published: bool
    publish_error: str | None


class ZoneProblem(BaseModel):
    key: str = Field(description='where, e.g. "zones[0].polygon"; "" for the document as a whole')
    message: str = Field(description="the validator's own words (English)")
    severity: str = Field(description='"error" (blocks saving) or "warning"')
    line: int | None = Field(None, description="line in the document, where known")
    code: str | None = Field(None, description="catalogue key of `text`; absent: `text` is `message`")
    text: str = Field("", description="the problem in the request's language, naming zone and field")


class ZoneValidation(BaseModel):
    valid: bool = Field(description="no errors (warnings allowed): saving would be accepted")
    problems: list[ZoneProblem]
    document: str = Field("", description="the text checked: `document`, with `data` written in")
    data: dict[str, Any] | None = Field(None, description="the checked text as plain data, when it reads")


class ZoneDiff(BaseModel):
    against: str = Field(description='"edge" (what the camera runs), "stored" (newest version) or "nothing"')
    version: int | None = Field(None, description="config version of what it is compared with")
    path: str | None = Field(None, description="the edge's zone file, when it runs one")
    changed: bool
    lines: list[dict[str, str]] = Field(description='[{"kind": "head|hunk|add|del|same", "text"}]')


class RevertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


def _saved(saved: SavedConfig) -> ZoneSaved:
    return ZoneSaved(
        node_id=saved.node_id,
        camera_id=saved.camera_id,
        version=saved.version,
        published=saved.published,
        publish_error=saved.publish_error,
    )


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(prefix="/api/v1/zones/{node_id}/{camera_id}", tags=["zones"])
    require = requirer(ctx)
    Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
    Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

    def problems_for(request: Request, user: Principal, document: str, found: list[dict[str, Any]]) -> Any:
        locale = locale_of(ctx, request, user)

        def t(key: str) -> str:
            return ctx.catalog.translate(locale, key)

        try:
            data = parse_text(document, "editor").data
        except ConfigFileError:
            data = None
        problems = []
        for problem in found:
            code, text = localise(problem, data, t)
            problems.append(ZoneProblem(**problem, code=code, text=text))
        return problems, data if isinstance(data, dict) else None

    @r.get("")
    def get_zones(node_id: str, camera_id: str, _user: Viewer) -> dict[str, Any]:
        latest = ctx.zones.latest(node_id, camera_id)
        if latest is None:
            raise HTTPException(404, "no zones stored for this camera")
        return latest

    @r.put("")
    def put_zones(
        request: Request, node_id: str, camera_id: str, user: Admin, body: Annotated[ZoneDocumentIn, Body()]
    ) -> ZoneSaved:
        try:
            saved = ctx.zones.save(node_id, camera_id, body.document, user.username, client_ip(request))
        except ZoneDocumentInvalid as exc:
            problems, _ = problems_for(request, user, body.document, exc.problems)
            raise HTTPException(422, {"problems": [p.model_dump() for p in problems]}) from exc
        return _saved(saved)

    @r.post("/validate")
    def validate_zones(
        request: Request, node_id: str, camera_id: str, user: Admin, body: Annotated[ZoneCheckIn, Body()]
    ) -> ZoneValidation:
        """The checks of saving, without saving: stores, publishes and audits nothing. The zone
        editor calls it while the admin edits. POST (not GET) for the body; CSRF-checked all the same.
        With `data`, the drawing is first written into the text (answered as `document`)."""
        document = body.document
        if body.data is not None:
            try:
                document = merge(document, body.data, f"{camera_id}.yaml")
            except ConfigFileError as exc:
                found = [
                    {"line": p.line, "key": p.key_path, "message": p.message, "severity": "error"}
                    for p in exc.problems
                ]
                problems, _ = problems_for(request, user, document, found)
                return ZoneValidation(valid=False, problems=problems, document=document, data=None)
        if len(document) > MAX_ZONE_DOCUMENT_CHARS:
            raise HTTPException(422, f"document of {len(document)} characters, over the limit")
        found = ctx.zones.check(node_id, camera_id, document)
        problems, data = problems_for(request, user, document, found)
        valid = all(p.severity != "error" for p in problems)
        return ZoneValidation(valid=valid, problems=problems, document=document, data=data)

    @r.post("/diff")
    def diff_zones(
        node_id: str, camera_id: str, _user: Admin, body: Annotated[ZoneDocumentIn, Body()]
    ) -> ZoneDiff:
        """What publishing `document` changes against the version running (stores nothing)."""
        base = zone_versions.baseline(ctx.store.read(), node_id, camera_id)
        old_name = {"edge": "edge", "stored": f"v{base.version}", "nothing": "(none)"}[base.against]
        lines = zone_versions.unified_diff(base.document, body.document, old_name, "new")
        return ZoneDiff(
            against=base.against, version=base.version, path=base.path, changed=bool(lines), lines=lines
        )

    @r.get("/versions")
    def list_versions(node_id: str, camera_id: str, _user: Viewer) -> list[dict[str, Any]]:
        rows = zone_versions.history(ctx.store.read(), node_id, camera_id)
        return [{k: v for k, v in row.items() if k != "document"} for row in rows]

    @r.get("/versions/{version}")
    def get_version(node_id: str, camera_id: str, version: int, _user: Viewer) -> dict[str, Any]:
        document = zone_versions.stored_document(ctx.store.read(), node_id, camera_id, version)
        if document is None:
            raise HTTPException(404, "no such version")
        return {"version": version, "document": document}

    @r.post("/revert")
    def revert_zones(
        request: Request, node_id: str, camera_id: str, user: Admin, body: Annotated[RevertIn, Body()]
    ) -> ZoneSaved:
        """Publish a stored version's document again as a new version (audited `zones.revert`)."""
        try:
            saved = ctx.zones.revert(node_id, camera_id, body.version, user.username, client_ip(request))
        except UnknownVersion as exc:
            raise HTTPException(404, str(exc)) from exc
        except ZoneDocumentInvalid as exc:  # valid then, not under today's rules
            raise HTTPException(422, {"problems": exc.problems}) from exc
        return _saved(saved)

    @r.get("/edge")
    def edge_zones(node_id: str, camera_id: str, _user: Viewer) -> dict[str, Any]:
        """The zone document the camera reports it runs (curbwatch.zones/1)."""
        running = zone_versions.edge_zones(ctx.store.read(), node_id, camera_id)
        if running is None:
            raise HTTPException(404, "the edge has not reported this camera's zones")
        return running.__dict__

    @r.get("/status")
    def zone_status(node_id: str, camera_id: str, _user: Viewer) -> dict[str, Any]:
        latest = ctx.zones.latest(node_id, camera_id)
        if latest is None:
            raise HTTPException(404, "no zones stored for this camera")
        return {
            "version": latest["version"],
            "applied": latest["applied"],
            "node_config_version": latest["config_version"],
        }

    return r
