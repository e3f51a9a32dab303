"""The FastAPI application: routers, error handling, static files."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from review_ui.web import (
    api,
    api_zones,
    live,
    pages_admin,
    pages_auth,
    pages_dashboard,
    pages_review,
    pages_shops,
    pages_users,
)
from review_ui.web.context import AppContext
from review_ui.web.guard import Guard
from review_ui.web.render import SECURITY_HEADERS, render
from review_ui.web.security import Forbidden, LoginRequired, is_api, principal_of


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(
        title="curbwatch review API",
        version="1",
        docs_url="/api/docs",
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(packages=[("review_ui", "static")]), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    for module in (
        pages_auth,
        pages_review,
        pages_dashboard,
        pages_shops,
        pages_users,
        pages_admin,
        live,
        api,
        api_zones,
    ):
        app.include_router(module.router(ctx))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if exc.api:
            return JSONResponse(
                {"detail": "not authenticated"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return render(
            ctx, request, "error.html", principal_of(ctx, request), status_code=403, message="forbidden"
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if is_api(request) or exc.status_code < 400:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        key = "not_found" if exc.status_code == 404 else ("forbidden" if exc.status_code == 403 else "")
        return render(
            ctx,
            request,
            "error.html",
            principal_of(ctx, request),
            status_code=exc.status_code,
            message=key or str(exc.detail),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422, headers=SECURITY_HEADERS)

    app.add_middleware(Guard, headers=SECURITY_HEADERS)
    return app
