"""Jinja2 rendering with the request's locale, user and CSRF token in every template."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from review_ui.auth import Principal, Role
from review_ui.i18n import LOCALES, choose_locale
from review_ui.localtime import ago, display_zone, local_time
from review_ui.web.context import AppContext
from review_ui.web.security import CSRF_FIELD

_env = Environment(loader=PackageLoader("review_ui", "templates"), autoescape=select_autoescape(["html"]))
_env.filters["tojson_attr"] = lambda value: json.dumps(value, ensure_ascii=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self';"
    " script-src 'self';"
    " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Notice:
    """A sentence for a page, by catalogue key: `say(notice)` in a template."""

    key: str
    params: dict[str, object] = field(default_factory=dict)


def locale_of(ctx: AppContext, request: Request, principal: Principal | None) -> str:
    return choose_locale(
        request.query_params.get("lang"),
        principal.locale if principal else None,
        request.cookies.get("cw_lang"),
        request.headers.get("accept-language"),
        ctx.config.locale,
    )


def render(
    ctx: AppContext,
    request: Request,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    locale = locale_of(ctx, request, principal)

    def t(key: str) -> str:
        return ctx.catalog.translate(locale, key)

    def can(role: str) -> bool:
        return principal is not None and principal.role.allows(Role(role))

    tz = display_zone(ctx.config.timezone)

    def lt(value: str | None, with_zone: bool = False) -> str:
        return local_time(value, tz, with_zone)

    def since(value: str | None) -> str:
        return ago(value, ctx.clock.now(), locale)

    def say(value: object) -> str:
        """An error or notice in the page's language: by its `key` when it has one, else as is."""
        key = getattr(value, "key", "")
        if not key:
            return str(value)
        return t(key).format(**getattr(value, "params", {}))

    html = _env.get_template(template).render(
        request=request,
        t=t,
        locale=locale,
        locales=LOCALES,
        user=principal,
        can=can,
        lt=lt,
        since=since,
        say=say,
        csrf_field=CSRF_FIELD,
        csrf=principal.csrf_token if principal else "",
        path=request.url.path,
        **values,
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    lang = request.query_params.get("lang")
    if lang in LOCALES:
        response.set_cookie("cw_lang", lang, samesite="lax", httponly=True, secure=ctx.config.secure_cookies)
    return response
