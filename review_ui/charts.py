"""Server-side SVG charts for the dashboard: histogram bars and rate bars, as numbers to draw.

No chart library: the figures are few, the page must work under `script-src 'self'` on a wall
screen and a phone, and SVG scales without a script. The template draws what this computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from review_ui.dashboard import Distribution

# Bin edges in seconds: fine below the 3-minute promise, coarse after it.
LOOP_EDGES_S = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0, 240.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0)
UNITS = {"zh-CN": ("{n} 秒", "{n} 分钟", "{n} 小时"), "en": ("{n} s", "{n} min", "{n} h")}


def duration(seconds: float | None, locale: str) -> str:
    """'45 s', '3.5 min', '2 h' (or in Chinese); '—' for nothing measured."""
    if seconds is None:
        return "—"
    words = UNITS.get(locale, UNITS["en"])
    if seconds < 60:
        return words[0].format(n=f"{seconds:.0f}")
    if seconds < 3600:
        return words[1].format(n=f"{seconds / 60:.1f}".removesuffix(".0"))
    return words[2].format(n=f"{seconds / 3600:.1f}".removesuffix(".0"))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # the bin's lower edge, e.g. "3 min"
    over_target: bool


@dataclass(frozen=True)
class Histogram:
    bars: list[Bar]
    target_x: float  # where the 3-minute line is drawn
    width: float
    height: float


def histogram(
    distribution: Distribution,
    locale: str,
    target_s: float,
    edges_s: tuple[float, ...] = LOOP_EDGES_S,
    width: float = 600.0,
    height: float = 140.0,
) -> Histogram:
    """Equal-width bars, one per bin (the bins are not equal in time: the label says which)."""
    counts = distribution.histogram(edges_s)
    tallest = max(counts) or 1
    step = width / len(counts)
    bars = []
    for i, (count, edge) in enumerate(zip(counts, edges_s, strict=True)):
        bar_height = height * count / tallest
        bars.append(
            Bar(
                x=i * step + 1,
                y=height - bar_height,
                width=step - 2,
                height=bar_height,
                count=count,
                label=duration(edge, locale),
                over_target=edge >= target_s,
            )
        )
    target_index = next((i for i, edge in enumerate(edges_s) if edge >= target_s), len(edges_s))
    return Histogram(bars, target_index * step, width, height)
