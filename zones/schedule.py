"""When a zone's rule applies.

Windows are local wall-clock times in the zone file's time zone, so "08:00"
means 08:00 on the street in winter and in summer alike. A window belongs to
the day it starts on: a Friday 22:00-02:00 window covers Saturday 01:00, and a
date exception replaces only the windows starting on its own date (the night
before still runs out). In a DST gap the missing hour is simply never seen; in
a DST overlap the repeated hour is active both times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from zones.schema import Schedule, TimeWindow

MINUTES_PER_DAY = 24 * 60


def windows_starting_on(schedule: Schedule, day: dt.date) -> Sequence[TimeWindow]:
    """The windows that start on local date `day`: its exception's, else the weekly ones."""
    for exception in schedule.exceptions:
        if exception.date == day:
            if not exception.active:
                return ()
            return exception.windows or (TimeWindow(start="00:00", end="24:00"),)
    weekday = day.weekday()
    return tuple(w for w in schedule.weekly if any(d.number == weekday for d in w.days))


def is_active(schedule: Schedule | None, when: dt.datetime, tz: str | dt.tzinfo) -> bool:
    """Does a rule with `schedule` apply at the aware instant `when`? None: always."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"is_active needs an aware datetime, got naive {when.isoformat()}")
    if schedule is None:
        return True
    local = when.astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz)
    minute = local.hour * 60 + local.minute + local.second / 60.0
    today = local.date()
    for window in windows_starting_on(schedule, today):
        end_min = MINUTES_PER_DAY if window.overnight else window.end_min
        if window.start_min <= minute < end_min:
            return True
    for window in windows_starting_on(schedule, today - dt.timedelta(days=1)):
        if window.overnight and minute < window.end_min:
            return True
    return False
