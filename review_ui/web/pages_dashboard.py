"""The command centre's dashboard: figures for a period and filter, as a page and as JSON."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from review_ui import charts, dashboard
from review_ui import metrics as review_metrics
from review_ui.auth import Principal, Role
from review_ui.localtime import display_zone
from review_ui.web.context import AppContext
from review_ui.web.render import locale_of, render
from review_ui.web.security import requirer

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def period_of(request: Request, now: datetime, timezone: str) -> tuple[datetime, datetime, str]:
    """[start, end) in UTC from ?period=today|24h|7d|30d or ?from=&to= (local dates, to inclusive)."""
    q = request.query_params
    zone = display_zone(timezone)
    start_text, end_text = q.get("from", "")[:10], q.get("to", "")[:10]
    if DATE.match(start_text):
        try:
            start = datetime.combine(datetime.fromisoformat(start_text).date(), time(), zone)
            last = (
                datetime.fromisoformat(end_text).date()
                if DATE.match(end_text)
                else now.astimezone(zone).date()
            )
            return start, datetime.combine(last + timedelta(days=1), time(), zone), "custom"
        except ValueError:
            pass  # an impossible date such as 2026-02-31: the default period
    name = q.get("period", "today")
    if name in PERIODS:
        return now - PERIODS[name], now, name
    midnight = datetime.combine(now.astimezone(zone).date(), time(), zone)
    return midnight, midnight + timedelta(days=1), "today"


def filter_of(request: Request) -> dashboard.DashboardFilter:
    q = request.query_params
    return dashboard.DashboardFilter(
        node_id=q.get("node", "")[:64],
        camera_id=q.get("camera", "")[:64],
        zone_id=q.get("zone", "")[:64],
        shop_id=q.get("shop", "")[:64],
    )


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter()
    require = requirer(ctx)
    Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]

    def figures(request: Request) -> tuple[dashboard.Dashboard, str, dashboard.DashboardFilter]:
        now = ctx.clock.now()
        start, end, period = period_of(request, now, ctx.config.timezone)
        flt = filter_of(request)
        return dashboard.build(ctx.store.read(), start, end, flt, now), period, flt

    @r.get("/dashboard", include_in_schema=False)
    def dashboard_page(request: Request, user: Viewer) -> Response:
        board, period, flt = figures(request)
        locale = locale_of(ctx, request, user)
        return render(
            ctx,
            request,
            "dashboard.html",
            user,
            board=board,
            period=period,
            flt=flt,
            report=request.query_params.get("report") == "1",
            query=str(request.query_params),
            target_s=dashboard.LOOP_TARGET_S,
            charts={
                name: charts.histogram(d, locale, dashboard.LOOP_TARGET_S) for name, d in board.loops.items()
            },
            duration=lambda s: charts.duration(s, locale),
        )

    @r.get("/api/v1/dashboard", tags=["dashboard"])
    def dashboard_json(request: Request, _user: Viewer) -> dict[str, Any]:
        """The dashboard's figures: same `period` / `from` / `to` / `node` / `camera` / `zone` /
        `shop` parameters as the page; durations in seconds, percentiles nearest-rank."""
        board, period, _flt = figures(request)
        return {"period": period, **board.as_json()}

    @r.get("/api/v1/metrics", tags=["dashboard"], response_class=Response)
    def metrics(_user: Viewer) -> Response:
        """Prometheus text format: loop-time quantiles and outcomes over the last 1 h and 24 h.
        Scrape with a viewer's API token (`authorization: {type: Bearer, credentials_file: ...}`)."""
        body = review_metrics.exposition(ctx.store, ctx.clock.now)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return r
