"""The command centre's figures for a period: what happened, how fast the loop closed, what failed.

Loop times are measured on the stored timestamps of each incident:
    opened -> verdict        the edge's `opened_at` to the first verdict (`verdicts.at`)
    verdict -> reminder      that verdict to the reminder's `sent_at`
    opened -> reminder       the whole promise ("detection to reminder in under 3 minutes")
    reminder -> rectified    the reminder's `sent_at` to the edge's `cleared_at`, for rectified ones
Percentiles are nearest-rank (the smallest value with at least p% of the values at or below
it), so every figure is one of the measured durations.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from review_ui.clock import iso, parse_iso
from review_ui.queries import camera_overview
from uplink.database import Database

LOOP_TARGET_S = 180.0  # the district's promise: detection to reminder in under 3 minutes
LOOPS = ("opened_to_verdict", "verdict_to_reminder", "opened_to_reminder", "reminder_to_rectified")
SILENT_AFTER = timedelta(minutes=10)  # a camera without a frame for this long needs a look


@dataclass(frozen=True)
class DashboardFilter:
    node_id: str = ""
    camera_id: str = ""
    zone_id: str = ""
    shop_id: str = ""

    def clause(self) -> tuple[str, list[Any]]:
        parts, params = [], []
        for column, value in (
            ("i.node_id", self.node_id),
            ("i.camera_id", self.camera_id),
            ("i.zone_id", self.zone_id),
            ("i.shop_id", self.shop_id),
        ):
            if value:
                parts.append(f"{column} = ?")
                params.append(value)
        return "".join(f" AND {p}" for p in parts), params


@dataclass(frozen=True)
class Distribution:
    """Durations in seconds: count, nearest-rank percentiles, and the share within the target."""

    values: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.values)

    def percentile(self, p: float) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p90(self) -> float | None:
        return self.percentile(90)

    @property
    def p95(self) -> float | None:
        return self.percentile(95)

    def share_within(self, seconds: float) -> float | None:
        if not self.values:
            return None
        return sum(1 for v in self.values if v <= seconds) / len(self.values)

    def histogram(self, edges_s: tuple[float, ...]) -> list[int]:
        """Counts per bin [edges[i], edges[i+1]); the last bin is open-ended, edges start at 0."""
        counts = [0] * len(edges_s)
        for value in self.values:
            counts[max(0, bisect_right(edges_s, value) - 1)] += 1
        return counts


@dataclass(frozen=True)
class RateRow:
    key: str
    decided: int
    rejected: int

    @property
    def rate(self) -> float:
        return self.rejected / self.decided if self.decided else 0.0


@dataclass
class Dashboard:
    start: datetime
    end: datetime
    counts: dict[str, int]
    rejected_by_reason: dict[str, int]
    loops: dict[str, Distribution]
    false_alarms: dict[str, list[RateRow]]  # by camera, zone, label
    repeat_offenders: list[dict[str, Any]]
    cameras_attention: list[dict[str, Any]]
    deliveries: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> status -> n

    def as_json(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "counts": self.counts,
            "rejected_by_reason": self.rejected_by_reason,
            "loop_target_s": LOOP_TARGET_S,
            "loops": {
                name: {
                    "count": d.count,
                    "p50_s": d.p50,
                    "p90_s": d.p90,
                    "p95_s": d.p95,
                    "within_target": d.share_within(LOOP_TARGET_S),
                }
                for name, d in self.loops.items()
            },
            "false_alarms": {
                group: [
                    {"key": r.key, "decided": r.decided, "rejected": r.rejected, "rate": r.rate} for r in rows
                ]
                for group, rows in self.false_alarms.items()
            },
            "repeat_offenders": self.repeat_offenders,
            "cameras_attention": self.cameras_attention,
            "deliveries": self.deliveries,
        }


def _seconds(later: str | None, earlier: str | None) -> float | None:
    if not later or not earlier:
        return None
    return max(0.0, (parse_iso(later) - parse_iso(earlier)).total_seconds())


def build(db: Database, start: datetime, end: datetime, flt: DashboardFilter, now: datetime) -> Dashboard:
    """Every figure for incidents opened in [start, end) that pass the filter."""
    where, params = flt.clause()
    rows = list(
        db.query(
            "SELECT i.incident_id, i.camera_id, i.zone_id, i.label, i.shop_id, i.shop_name,"
            " i.opened_at, i.cleared_at,"
            " COALESCE(w.status, 'pending') AS status,"
            " v.at AS verdict_at, v.verdict, v.reason, ci.case_id"
            " FROM incidents i LEFT JOIN workflow w ON w.incident_id = i.incident_id"
            # The first verdict (the earliest), looked up once per incident, not once per column.
            " LEFT JOIN verdicts v ON v.id = (SELECT min(id) FROM verdicts WHERE incident_id = i.incident_id)"
            " LEFT JOIN case_incidents ci ON ci.incident_id = i.incident_id"
            " WHERE i.opened_at >= ? AND i.opened_at < ?" + where,  # along incidents(opened_at)
            [iso(start), iso(end), *params],
        )
    )
    sent = _reminders_sent(db, rows, start)
    # What happened to the period's incidents: verdicts as given, reminders as sent, and where
    # the loop ended (rectified / escalated) as the workflow has it now.
    counts = dict.fromkeys(
        ("opened", "pending", "confirmed", "rejected", "reminded", "rectified", "escalated"), 0
    )
    counts["opened"] = len(rows)
    reasons: Counter[str] = Counter()
    loops: dict[str, list[float]] = {name: [] for name in LOOPS}
    by: dict[str, dict[str, list[int]]] = {
        g: defaultdict(lambda: [0, 0]) for g in ("camera", "zone", "label")
    }
    offenders: dict[str, dict[str, Any]] = {}
    for row in rows:
        sent_at = sent.get(row["incident_id"])
        counts[row["verdict"] or "pending"] += 1
        counts["reminded"] += sent_at is not None
        if row["status"] in ("rectified", "escalated"):
            counts[row["status"]] += 1
        if row["verdict"] == "rejected":
            reasons[row["reason"] or "other"] += 1
        if row["verdict"]:
            for group, key in (
                ("camera", row["camera_id"]),
                ("zone", row["zone_id"]),
                ("label", row["label"]),
            ):
                by[group][key][0] += 1
                by[group][key][1] += row["verdict"] == "rejected"
        rectified = row["status"] == "rectified"
        for name, value in (
            ("opened_to_verdict", _seconds(row["verdict_at"], row["opened_at"])),
            ("verdict_to_reminder", _seconds(sent_at, row["verdict_at"])),
            ("opened_to_reminder", _seconds(sent_at, row["opened_at"])),
            ("reminder_to_rectified", _seconds(row["cleared_at"], sent_at) if rectified else None),
        ):
            if value is not None:
                loops[name].append(value)
        if row["verdict"] == "confirmed":
            shop = offenders.setdefault(
                row["shop_id"], {"shop_id": row["shop_id"], "shop_name": row["shop_name"], "cases": set()}
            )
            shop["cases"].add(row["case_id"] or row["incident_id"])
    repeat = sorted(
        ({**shop, "cases": len(shop["cases"])} for shop in offenders.values()),
        key=lambda s: (-s["cases"], s["shop_id"]),
    )
    return Dashboard(
        start=start,
        end=end,
        counts=counts,
        rejected_by_reason=dict(reasons.most_common()),
        loops={name: Distribution(tuple(values)) for name, values in loops.items()},
        false_alarms={
            group: sorted(
                (RateRow(key, decided, rejected) for key, (decided, rejected) in keyed.items()),
                key=lambda r: (-r.rate, -r.decided, r.key),
            )
            for group, keyed in by.items()
        },
        repeat_offenders=[s for s in repeat if s["cases"] > 1][:10],
        cameras_attention=_cameras_attention(db, flt, now),
        deliveries=_deliveries(db, start, end),
    )


def _reminders_sent(db: Database, rows: list[dict[str, Any]], start: datetime) -> dict[str, str]:
    """incident id -> when its reminder was first sent. A case's one reminder names its newest
    occurrence; the case's other occurrences were reminded by it too."""
    by_incident: dict[str, str] = {}
    by_case: dict[int, str] = {}
    for incident_id, sent_at, case_id in db.execute(
        "SELECT r.incident_id, min(r.sent_at), ci.case_id FROM reminders r"
        " LEFT JOIN case_incidents ci ON ci.incident_id = r.incident_id"
        " WHERE r.sent_at IS NOT NULL AND r.created_at >= ? AND r.step = 'reminder'"  # the shop's first
        " GROUP BY r.incident_id, ci.case_id",
        [iso(start)],
    ):
        by_incident[incident_id] = sent_at
        if case_id is not None:
            by_case[case_id] = min(sent_at, by_case.get(case_id, sent_at))
    sent = {}
    for row in rows:
        at = by_incident.get(row["incident_id"]) or by_case.get(row["case_id"])
        if at is not None:
            sent[row["incident_id"]] = at
    return sent


def _deliveries(db: Database, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """channel -> {status: n} of the period's outbox rows, with the SMS receipts
    (`delivery_delivered`, `delivery_undelivered`) where the provider reported them."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for channel, status, delivery, n in db.execute(
        "SELECT channel, status, delivery, count(*) FROM reminders"
        " WHERE created_at >= ? AND created_at < ? GROUP BY 1, 2, 3",
        [iso(start), iso(end)],
    ):
        out[channel][status] += n
        if delivery:
            out[channel][f"delivery_{delivery}"] += n
    return {channel: dict(counts) for channel, counts in out.items()}


def _cameras_attention(db: Database, flt: DashboardFilter, now: datetime) -> list[dict[str, Any]]:
    """Cameras offline or reconnecting, obstructed or moved, or silent for SILENT_AFTER."""
    _nodes, cameras = camera_overview(db)
    found = []
    for camera in cameras:
        if (flt.node_id and camera["node_id"] != flt.node_id) or (
            flt.camera_id and camera["camera_id"] != flt.camera_id
        ):
            continue
        why = []
        if camera["state"] in ("offline", "reconnecting"):
            why.append(f"camera_{camera['state']}")
        if camera["view"] in ("obstructed", "view_changed"):
            why.append(f"view_{camera['view']}")
        last = camera["last_frame_at"]
        if camera["state"] == "streaming" and (last is None or now - parse_iso(last) > SILENT_AFTER):
            why.append("camera_silent")
        if why:
            found.append(
                {
                    "node_id": camera["node_id"],
                    "camera_id": camera["camera_id"],
                    "why": why,
                    "last_frame_at": last,
                }
            )
    return found
