"""`/events`: the queue's live update as Server-Sent Events.

The stream sends the change token (`event: change`) whenever it differs from the last one sent:
at once on connect, then when the ingest, a verdict or a re-queue notifies, and on a slow
re-check that also catches writers that do not notify (the reminder worker). A stream lasts a
few minutes, then ends; EventSource reconnects, which re-checks the session. The page falls
back to polling /api/v1/changes when EventSource fails.
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from review_ui import queries
from review_ui.auth import Principal, Role
from review_ui.web.context import AppContext
from review_ui.web.security import requirer

RECHECK_S = 1.0  # what another process wrote (a second review server, an ingest worker) shows within it
KEEPALIVE_S = 25.0
STREAM_S = 300.0
RETRY_MS = 3000


def router(ctx: AppContext) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    require = requirer(ctx)
    Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]

    async def stream(request: Request) -> AsyncIterator[str]:
        clock = asyncio.get_running_loop().time
        ends_at = clock() + STREAM_S
        sent = ""
        quiet_since = clock()
        with ctx.changes.subscribe() as subscription:
            yield f"retry: {RETRY_MS}\n\n"
            while not ctx.changes.closed and clock() < ends_at:
                token = await run_in_threadpool(lambda: queries.change_token(ctx.store.read()))
                if token != sent:
                    sent, quiet_since = token, clock()
                    yield f"event: change\ndata: {token}\n\n"
                elif clock() - quiet_since >= KEEPALIVE_S:
                    quiet_since = clock()
                    yield ": keep-alive\n\n"
                if await request.is_disconnected():
                    return
                await subscription.wait(RECHECK_S)

    @r.get("/events")
    async def events(request: Request, _user: Viewer) -> Response:
        return StreamingResponse(
            stream(request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return r
