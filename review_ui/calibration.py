"""Per-zone suggestions from the verdict history: settings that keep every confirmed incident and
drop rejected ones. Shown to an admin with the numbers behind them; never applied by themselves.

- `min_confidence`: the lowest score among confirmed incidents keeps them all; every rejected
  one scored below it would not have been raised.
- `dwell_s`: the shortest time a confirmed object stayed keeps them all; every rejected one that
  was gone sooner would have cleared before it opened.
Scores and presence are the incident's as stored (its latest event's score; first seen to
cleared, or to now while still there), so a suggestion is as good as that history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from review_ui.clock import parse_iso
from uplink.database import Database

MIN_CONFIRMED = 3  # fewer confirmed incidents than this say too little to suggest anything


@dataclass(frozen=True)
class Suggestion:
    zone_id: str
    field: str  # "min_confidence" | "dwell_s"
    current: float
    suggested: float
    confirmed: int  # all kept, by construction
    rejected_dropped: int
    rejected: int


def suggestions(
    db: Database,
    node_id: str,
    camera_id: str,
    current: dict[str, dict[str, float]],
    now: datetime,
) -> list[Suggestion]:
    """For each zone in `current` ({zone_id: {"min_confidence", "dwell_s"}}) with enough history."""
    rows = db.execute(
        "SELECT i.zone_id, i.confidence, i.first_seen_at, i.cleared_at, v.verdict FROM incidents i"
        " JOIN verdicts v ON v.id = (SELECT min(id) FROM verdicts WHERE incident_id = i.incident_id)"
        " WHERE i.node_id = ? AND i.camera_id = ?",
        [node_id, camera_id],
    ).fetchall()
    found: list[Suggestion] = []
    for zone_id, settings in current.items():
        mine = [r for r in rows if r[0] == zone_id]
        confirmed = [r for r in mine if r[4] == "confirmed"]
        rejected = [r for r in mine if r[4] == "rejected"]
        if len(confirmed) < MIN_CONFIRMED or not rejected:
            continue
        # Floor to the hundredth: a threshold of 0.52 keeps a confirmed score of 0.523.
        lowest_score = math.floor(min(r[1] for r in confirmed) * 100) / 100
        if lowest_score > settings["min_confidence"]:
            dropped = sum(1 for r in rejected if r[1] < lowest_score)
            if dropped:
                found.append(
                    Suggestion(
                        zone_id,
                        "min_confidence",
                        settings["min_confidence"],
                        lowest_score,
                        len(confirmed),
                        dropped,
                        len(rejected),
                    )
                )

        def presence(row: tuple[object, ...]) -> float:
            end = parse_iso(str(row[3])) if row[3] else now
            return (end - parse_iso(str(row[2]))).total_seconds()

        shortest_stay = math.floor(min(presence(r) for r in confirmed))
        if shortest_stay > settings["dwell_s"]:
            dropped = sum(1 for r in rejected if r[3] and presence(r) < shortest_stay)
            if dropped:
                found.append(
                    Suggestion(
                        zone_id,
                        "dwell_s",
                        settings["dwell_s"],
                        float(shortest_stay),
                        len(confirmed),
                        dropped,
                        len(rejected),
                    )
                )
    return found
