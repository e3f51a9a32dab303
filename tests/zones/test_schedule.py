"""Schedules: weekly windows, overnight windows, date exceptions, time zones with and without DST."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from zones.schedule import is_active
from zones.schema import Schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
ALL_DAYS = [*WEEKDAYS, "sat", "sun"]
OFFICE = {"weekly": [{"days": WEEKDAYS, "start": "08:00", "end": "20:00"}]}
DAILY = {"weekly": [{"days": ALL_DAYS, "start": "08:00", "end": "20:00"}]}
NIGHT = {"weekly": [{"days": ["fri"], "start": "22:00", "end": "02:00"}]}
LATE = {"weekly": [{"days": ["sun"], "start": "18:00", "end": "24:00"}]}


def local(text: str, tz: ZoneInfo = SHANGHAI) -> dt.datetime:
    """'2025-05-05 08:00' in `tz`. 2025-05-05 is a Monday, 2025-10-01 a Wednesday."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def with_exceptions(base: dict[str, Any], *exceptions: dict[str, Any]) -> dict[str, Any]:
    return {**base, "exceptions": list(exceptions)}


CASES = [
    # Weekly windows, Asia/Shanghai (UTC+8 all year).
    (OFFICE, local("2025-05-05 08:00"), SHANGHAI, True),
    (OFFICE, local("2025-05-05 07:59:59"), SHANGHAI, False),
    (OFFICE, local("2025-05-05 19:59:59"), SHANGHAI, True),
    (OFFICE, local("2025-05-05 20:00"), SHANGHAI, False),  # the end is exclusive
    (OFFICE, local("2025-05-10 10:00"), SHANGHAI, False),  # Saturday
    (OFFICE, utc("2025-05-05 00:00"), SHANGHAI, True),  # the same instant given in UTC
    (OFFICE, utc("2025-05-04 23:59"), SHANGHAI, False),
    # Overnight: a Friday 22:00-02:00 window belongs to Friday.
    (NIGHT, local("2025-05-09 23:00"), SHANGHAI, True),
    (NIGHT, local("2025-05-10 01:59"), SHANGHAI, True),  # Saturday morning, Friday's window
    (NIGHT, local("2025-05-10 02:00"), SHANGHAI, False),
    (NIGHT, local("2025-05-09 21:59"), SHANGHAI, False),
    (NIGHT, local("2025-05-09 01:00"), SHANGHAI, False),  # Friday morning: Thursday has none
    (NIGHT, local("2025-05-10 23:00"), SHANGHAI, False),  # Saturday night
    # "24:00" ends at midnight.
    (LATE, local("2025-05-11 23:59:59"), SHANGHAI, True),
    (LATE, local("2025-05-12 00:00"), SHANGHAI, False),
    # Exceptions replace the windows starting on their date.
    (
        with_exceptions(DAILY, {"date": "2025-10-01", "active": False}),
        local("2025-10-01 10:00"),
        SHANGHAI,
        False,
    ),
    (
        with_exceptions(DAILY, {"date": "2025-10-01", "active": False}),
        local("2025-10-02 10:00"),
        SHANGHAI,
        True,
    ),
    (
        with_exceptions(OFFICE, {"date": "2025-05-11", "active": True}),
        local("2025-05-11 03:00"),
        SHANGHAI,
        True,
    ),
    (
        with_exceptions(
            OFFICE, {"date": "2025-05-07", "active": True, "windows": [{"start": "18:00", "end": "23:00"}]}
        ),
        local("2025-05-07 10:00"),
        SHANGHAI,
        False,  # a market day replaces office hours with the evening market
    ),
    (
        with_exceptions(
            OFFICE, {"date": "2025-05-07", "active": True, "windows": [{"start": "18:00", "end": "23:00"}]}
        ),
        local("2025-05-07 19:00"),
        SHANGHAI,
        True,
    ),
    # The night before still runs out on an exception date ...
    (
        with_exceptions(NIGHT, {"date": "2025-05-10", "active": False}),
        local("2025-05-10 01:00"),
        SHANGHAI,
        True,
    ),
    # ... unless the exception is on the night's own date.
    (
        with_exceptions(NIGHT, {"date": "2025-05-09", "active": False}),
        local("2025-05-10 01:00"),
        SHANGHAI,
        False,
    ),
    (
        with_exceptions(
            OFFICE, {"date": "2025-05-10", "active": True, "windows": [{"start": "20:00", "end": "03:00"}]}
        ),
        local("2025-05-11 02:30"),
        SHANGHAI,
        True,  # an exception's overnight window reaches into the next day
    ),
    # Market days only: exceptions without weekly windows.
    ({"exceptions": [{"date": "2025-05-07", "active": True}]}, local("2025-05-07 12:00"), SHANGHAI, True),
    ({"exceptions": [{"date": "2025-05-07", "active": True}]}, local("2025-05-08 12:00"), SHANGHAI, False),
    # Europe/Berlin: windows are wall-clock time, so the UTC hour moves with DST.
    (DAILY, utc("2025-01-15 07:00"), BERLIN, True),  # 08:00 CET
    (DAILY, utc("2025-01-15 06:59"), BERLIN, False),
    (DAILY, utc("2025-07-15 06:00"), BERLIN, True),  # 08:00 CEST
    (DAILY, utc("2025-07-15 05:59"), BERLIN, False),
    (DAILY, utc("2025-07-15 17:59"), BERLIN, True),
    (DAILY, utc("2025-07-15 18:00"), BERLIN, False),  # 20:00 CEST
    (DAILY, utc("2025-05-05 00:30"), BERLIN, False),  # 02:30 in Berlin while 08:30 in Shanghai
    # Spring forward, 2025-03-30: 02:00-03:00 does not exist; a 02:30 start is reached at 03:00.
    (
        {"weekly": [{"days": ["sun"], "start": "02:30", "end": "03:30"}]},
        utc("2025-03-30 00:59"),
        BERLIN,
        False,
    ),
    (
        {"weekly": [{"days": ["sun"], "start": "02:30", "end": "03:30"}]},
        utc("2025-03-30 01:00"),
        BERLIN,
        True,
    ),
    # Fall back, 2025-10-26: 02:00-03:00 happens twice, and is active both times.
    (
        {"weekly": [{"days": ["sun"], "start": "02:00", "end": "02:30"}]},
        utc("2025-10-26 00:15"),
        BERLIN,
        True,
    ),
    (
        {"weekly": [{"days": ["sun"], "start": "02:00", "end": "02:30"}]},
        utc("2025-10-26 01:15"),
        BERLIN,
        True,
    ),
    (
        {"weekly": [{"days": ["sun"], "start": "02:00", "end": "02:30"}]},
        utc("2025-10-26 01:45"),
        BERLIN,
        False,
    ),
]


@pytest.mark.parametrize(("schedule", "when", "tz", "expected"), CASES)
def test_is_active(schedule: dict[str, Any], when: dt.datetime, tz: ZoneInfo, expected: bool) -> None:
    assert is_active(Schedule.model_validate(schedule), when, tz) is expected
    assert is_active(Schedule.model_validate(schedule), when, str(tz)) is expected  # a name works too


@pytest.mark.parametrize("when", [local("2025-05-10 03:00"), utc("2030-01-01 00:00")])
def test_no_schedule_is_always_active(when: dt.datetime) -> None:
    assert is_active(None, when, SHANGHAI) is True


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        is_active(Schedule.model_validate(OFFICE), dt.datetime(2025, 5, 5, 8), SHANGHAI)  # noqa: DTZ001
