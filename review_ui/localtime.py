"""Times as inspectors read them: the deployment's timezone, a human format, "3 分钟前".

The database keeps UTC ISO 8601 (it sorts as text); pages show local wall time. The evidence
picture is stamped in the zone's timezone by the edge; `timezone` in review.yaml (default
Asia/Shanghai) should be the same for one district.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

AGO = {
    "zh-CN": ("刚刚", "{n} 分钟前", "{n} 小时前", "{n} 天前"),
    "en": ("just now", "{n} min ago", "{n} h ago", "{n} d ago"),
}


@cache
def display_zone(name: str) -> ZoneInfo:
    """The named IANA zone; UTC for a name this machine does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def local_time(text: str | None, tz: ZoneInfo, with_zone: bool = False) -> str:
    """'2026-12-01T10:53:47.935451Z' -> '2026-12-01 18:53:47' in Asia/Shanghai; other text as is."""
    value = parse(text)
    if value is None:
        return text or ""
    local = value.astimezone(tz)
    shown = local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{shown} {local.tzname()}" if with_zone else shown


def ago(text: str | None, now: datetime, locale: str) -> str:
    value = parse(text)
    if value is None:
        return ""
    words = AGO.get(locale, AGO["en"])
    seconds = max(0.0, (now - value).total_seconds())
    if seconds < 60:
        return words[0]
    if seconds < 3600:
        return words[1].format(n=int(seconds // 60))
    if seconds < 86400:
        return words[2].format(n=int(seconds // 3600))
    return words[3].format(n=int(seconds // 86400))
