"""Zone file problems in the reader's language, naming the zone and the field.

The zones validator speaks English for `zones validate` and the edge's logs (shapely's
`Self-intersection[0.967 0.777]`, pydantic's "Input should be greater than or equal to 1").
The editor maps each message it knows to a catalogue key with parameters; one it does not
know is shown as it came, so nothing is hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Translate = Callable[[str], str]

# First match wins: the specific rules before pydantic's generic ones.
RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), key)
    for pattern, key in (
        (r"^polygon is not simple", "zone_problem_self_intersection"),
        (r"^a polygon needs at least 3 distinct points, got (?P<count>\d+)", "zone_problem_too_few_points"),
        (r"^polygon encloses no area", "zone_problem_no_area"),
        (r"^coordinate (?P<value>\S+) is outside 0\.\.1", "zone_problem_outside_frame"),
        (r"^monitored zone '.*' needs `shop`", "zone_problem_needs_shop"),
        (r"^unknown class '(?P<name>[^']*)'", "zone_problem_unknown_class"),
        (r"^'(?P<name>[^']*)' is never goods", "zone_problem_people_class"),
        (r"^zone id '(?P<value>[^']*)' is already used", "zone_problem_duplicate_id"),
        (r"^'(?P<value>.*)' is not an id", "zone_problem_bad_id"),
        (r"^'(?P<value>.*)' is not a time", "zone_problem_bad_time"),
        (r"^unknown time zone '(?P<value>[^']*)'", "zone_problem_bad_timezone"),
        (r"^min_area (?P<low>\S+) must be below max_area (?P<high>\S+)", "zone_problem_area_range"),
        (r"^overlaps zones\[\d+\] \('(?P<other>[^']*)'", "zone_problem_overlap_other_shop"),
        (r"^exempt zone '.*' overlaps no monitored zone", "zone_problem_exempt_useless"),
        (r"^no monitored zone", "zone_problem_no_monitored"),
        (r"^invalid (YAML|JSON)", "zone_problem_syntax"),
        (r"^document is for '(?P<found>[^']*)', not '(?P<expected>[^']*)'", "zone_problem_wrong_camera"),
        (r"^Input should be greater than or equal to (?P<limit>[^\s,]+)", "zone_problem_at_least"),
        (r"^Input should be greater than (?P<limit>[^\s,]+)", "zone_problem_above"),
        (r"^Input should be less than or equal to (?P<limit>[^\s,]+)", "zone_problem_at_most"),
        (r"^Input should be less than (?P<limit>[^\s,]+)", "zone_problem_below"),
        (r"^Field required", "zone_problem_missing"),
        (r"^Extra inputs are not permitted", "zone_problem_unknown_field"),
        (r"^Input should be a valid (number|integer)", "zone_problem_not_number"),
        (r"^Input should be a valid string", "zone_problem_not_text"),
        (r"^Input should be a valid (list|tuple|array)", "zone_problem_not_list"),
        (r"^Input should be a valid boolean", "zone_problem_not_boolean"),
        (r"^Input should be 'monitored' or 'exempt'", "zone_problem_bad_kind"),
    )
)
_ZONE_KEY = re.compile(r"^zones\[(?P<index>\d+)\]\.?(?P<rest>.*)$")
_INDEX = re.compile(r"\[\d+\]")


def zone_name(data: Any, index: int) -> str:
    """How a zone is named to people: its id, else its place in the list (1-based)."""
    zones = data.get("zones") if isinstance(data, Mapping) else None
    if isinstance(zones, list) and index < len(zones) and isinstance(zones[index], Mapping):
        zone_id = zones[index].get("id")
        if isinstance(zone_id, str) and zone_id:
            return zone_id
    return f"#{index + 1}"


def field_label(path: str, t: Translate) -> str:
    """'schedule.weekly[0].start' -> the catalogue's label for it, or for its last part, or itself."""
    if not path:
        return ""
    for candidate in (_INDEX.sub("", path), path.rsplit(".", 1)[-1].split("[")[0]):
        key = f"zone_field_{candidate}"
        label = t(key)
        if label != key:
            return label
    return path


def localise(problem: Mapping[str, Any], data: Any, t: Translate) -> tuple[str | None, str]:
    """(catalogue key or None, the text to show) for one problem of `ZoneConfigs.check`."""
    message = str(problem.get("message", ""))
    key_path = str(problem.get("key") or "")
    zone = ""
    field = field_label(key_path, t)
    found = _ZONE_KEY.match(key_path)
    if found:
        zone = zone_name(data, int(found["index"]))
        rest = found["rest"]
        field = t("zone_field_in_zone").format(zone=zone, field=field_label(rest, t) or t("zone_field_zone"))
    for pattern, code in RULES:
        match = pattern.match(message)
        if match:
            values = {"zone": zone, "field": field or t("zone_field_document"), **match.groupdict()}
            try:
                return code, t(code).format(**values)
            except (KeyError, IndexError, ValueError):  # a catalogue typo must not hide the problem
                return None, message
    return None, message
