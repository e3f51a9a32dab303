"""Prometheus metrics of the loop, read from the database at scrape time.

Computed per scrape over the last hour and day (dashboard.build), so the figures survive a
restart and agree with the dashboard; a scrape costs one dashboard query per window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from review_ui import dashboard
from review_ui.db import Store

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
QUANTILES = {"0.5": 50.0, "0.9": 90.0, "0.95": 95.0}


class LoopCollector(Collector):
    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self.store = store
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loop = GaugeMetricFamily(
            "curbwatch_review_loop_seconds",
            "Loop times of incidents opened in the window (nearest-rank quantiles)",
            labels=["loop", "window", "quantile"],
        )
        measured = GaugeMetricFamily(
            "curbwatch_review_loop_measured",
            "Incidents the loop time was measured on",
            labels=["loop", "window"],
        )
        within = GaugeMetricFamily(
            "curbwatch_review_loop_within_target_ratio",
            f"Share of loops within {dashboard.LOOP_TARGET_S:.0f} s",
            labels=["loop", "window"],
        )
        incidents = GaugeMetricFamily(
            "curbwatch_review_incidents",
            "Incidents opened in the window, by outcome",
            labels=["outcome", "window"],
        )
        now = self.now()
        db = self.store.read()
        for window, length in WINDOWS.items():
            board = dashboard.build(db, now - length, now, dashboard.DashboardFilter(), now)
            for name, distribution in board.loops.items():
                measured.add_metric([name, window], distribution.count)
                share = distribution.share_within(dashboard.LOOP_TARGET_S)
                if share is not None:
                    within.add_metric([name, window], share)
                for label, p in QUANTILES.items():
                    value = distribution.percentile(p)
                    if value is not None:
                        loop.add_metric([name, window, label], value)
            for outcome, n in board.counts.items():
                incidents.add_metric([outcome, window], n)
        yield from (loop, measured, within, incidents)


def exposition(store: Store, now: Callable[[], datetime]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoopCollector(store, now))
    return generate_latest(registry)
