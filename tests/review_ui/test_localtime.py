"""Local time on pages: the deployment's timezone, a human format, relative times in both languages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from review_ui.localtime import ago, local_time

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2026-12-01T10:53:47.935451Z", "2026-12-01 18:53:47"),
        ("2026-12-01T23:30:00+00:00", "2026-12-02 07:30:00"),
        ("", ""),
        (None, ""),
        ("not a time", "not a time"),
    ],
)
def test_stored_utc_is_shown_in_local_wall_time(stored: str | None, shown: str) -> None:
    assert local_time(stored, SHANGHAI) == shown


def test_the_zone_name_when_asked() -> None:
    assert local_time("2026-12-01T10:53:47Z", SHANGHAI, with_zone=True) == "2026-12-01 18:53:47 CST"


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [
        (20, "刚刚", "just now"),
        (180, "3 分钟前", "3 min ago"),
        (7300, "2 小时前", "2 h ago"),
        (200000, "2 天前", "2 d ago"),
    ],
)
def test_relative_times_in_chinese_and_english(seconds: int, zh: str, en: str) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    stamp = datetime.fromtimestamp(now.timestamp() - seconds, UTC).isoformat()
    assert ago(stamp, now, "zh-CN") == zh and ago(stamp, now, "en") == en
