"""Named rules a zone file must (errors) or should (warnings) follow.

Per-value rules (`polygon_problem`, `class_problem`) run inside the pydantic
validators so their errors carry the exact key. Rules across zones take a
validated ZoneFile and return Findings with the key paths they are about.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

import shapely

from models.classes import PEOPLE_CLASSES
from zones.yaml_source import Finding, Severity

if TYPE_CHECKING:
    from zones.schema import ZoneFile

# Overlaps smaller than this fraction of the frame are drawing slop, not a conflict.
MIN_CONFLICT_AREA_FRACTION = 1e-4
# A zone smaller than this fraction of the frame (about 2 px at 1080p) is points on a line.
MIN_ZONE_AREA_FRACTION = 1e-6


def polygon_problem(points: Sequence[tuple[float, float]]) -> str | None:
    """Why these normalised points do not make a usable zone polygon, or None."""
    distinct = list(dict.fromkeys(points))
    if len(distinct) < 3:
        return f"a polygon needs at least 3 distinct points, got {len(distinct)}"
    polygon = shapely.Polygon(points)
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        return (
            f"polygon is not simple ({reason}): list the points in order around the area, "
            "without the outline crossing itself"
        )
    if polygon.area < MIN_ZONE_AREA_FRACTION:
        return f"polygon encloses no area ({polygon.area:.2g} of the frame): are the points on one line?"
    return None


def class_problem(name: str, known: Collection[str]) -> str | None:
    """Why `name` cannot be a goods class for a detector that knows `known`, or None."""
    if name in PEOPLE_CLASSES:
        return f"'{name}' is never goods: people are blurred in evidence, not reported"
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        return f"unknown class '{name}': the detector has no such class{hint}"
    return None


def duplicate_zone_ids(zone_file: ZoneFile) -> list[Finding]:
    first_index: dict[str, int] = {}
    findings = []
    for index, zone in enumerate(zone_file.zones):
        if zone.id in first_index:
            findings.append(
                Finding(
                    ("zones", index, "id"),
                    f"zone id '{zone.id}' is already used by zones[{first_index[zone.id]}]",
                )
            )
        else:
            first_index[zone.id] = index
    return findings


MAX_OVERLAP_FINDINGS = 20


def overlapping_shops(zone_file: ZoneFile) -> list[Finding]:
    """Monitored zones of different shops that overlap: who gets the reminder is unclear.

    Candidate pairs come from an STRtree of the polygons (not every pair), and at most
    MAX_OVERLAP_FINDINGS are reported, then one line says how many more there are.
    """
    monitored = [(i, z, z.shop.id) for i, z in enumerate(zone_file.zones) if z.kind == "monitored" and z.shop]
    if len(monitored) < 2:
        return []
    polygons = [shapely.Polygon(z.polygon) for _, z, _ in monitored]
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons, predicate="intersects")
    findings: list[Finding] = []
    more = 0
    for a, b in sorted((int(a), int(b)) for a, b in zip(left, right, strict=True) if a < b):
        (i, first, first_shop), (j, _, second_shop) = monitored[a], monitored[b]
        if first_shop == second_shop:
            continue
        if shapely.intersection(polygons[a], polygons[b]).area > MIN_CONFLICT_AREA_FRACTION:
            if len(findings) >= MAX_OVERLAP_FINDINGS:
                more += 1
                continue
            findings.append(
                Finding(
                    ("zones", j, "polygon"),
                    f"overlaps zones[{i}] ('{first.id}', shop '{first_shop}') although shop "
                    f"'{second_shop}' differs: an object in both is counted once, in the zone "
                    "holding more of its footprint",
                    Severity.WARNING,
                )
            )
    if more:
        findings.append(
            Finding(
                ("zones",), f"{more} more overlapping pairs of zones of different shops", Severity.WARNING
            )
        )
    return findings


def exempt_outside_monitored(zone_file: ZoneFile) -> list[Finding]:
    """An exempt zone that touches no monitored zone exempts nothing."""
    monitored = [shapely.Polygon(z.polygon) for z in zone_file.zones if z.kind == "monitored"]
    findings = []
    for index, zone in enumerate(zone_file.zones):
        if zone.kind != "exempt":
            continue
        polygon = shapely.Polygon(zone.polygon)
        if not any(polygon.intersection(m).area > MIN_CONFLICT_AREA_FRACTION for m in monitored):
            findings.append(
                Finding(
                    ("zones", index, "polygon"),
                    f"exempt zone '{zone.id}' overlaps no monitored zone, so it exempts nothing",
                    Severity.WARNING,
                )
            )
    return findings


def no_monitored_zone(zone_file: ZoneFile) -> list[Finding]:
    if any(zone.kind == "monitored" for zone in zone_file.zones):
        return []
    return [Finding(("zones",), "no monitored zone: this camera reports nothing", Severity.WARNING)]


CROSS_ZONE_RULES: tuple[Callable[[ZoneFile], list[Finding]], ...] = (
    duplicate_zone_ids,
    overlapping_shops,
    exempt_outside_monitored,
    no_monitored_zone,
)


def cross_zone_findings(zone_file: ZoneFile) -> list[Finding]:
    return [finding for rule in CROSS_ZONE_RULES for finding in rule(zone_file)]
