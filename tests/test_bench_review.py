"""bench.review's bulk load makes the cases the review server's assigner would have made."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.review import Site, populate
from review_ui.cases import assign_new
from review_ui.migrations import migrate
from tests.support.database import review_db_for
from uplink.database import Database
from uplink.review_db import open_review_database


def seven_shops(i: int) -> Site:
    # Every tenth incident is decided: a shop's incidents alternate between decided and not.
    return Site(f"node-{i % 3}", f"cam-{i % 5}", f"zone-{i % 5}", f"shop-{i % 7}", f"商户{i % 7}")


def loaded(folder: Path, interval_s: float, window_h: float, *, with_cases: bool) -> Database:
    folder.mkdir()
    db = open_review_database(review_db_for(folder))
    migrate(db)
    with db.transaction():
        populate(db, 300, site=seven_shops, interval_s=interval_s, window_h=window_h, with_cases=with_cases)
    return db


def cases(db: Database) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in db.execute(
            "SELECT c.id, c.shop_id, c.first_opened_at, c.last_opened_at, c.occurrences,"
            " c.head_incident_id, c.decided, count(ci.incident_id) FROM cases c"
            " JOIN case_incidents ci ON ci.case_id = c.id GROUP BY c.id ORDER BY c.id"
        )
    ]


@pytest.mark.parametrize(
    ("interval_s", "window_h"),
    [(30.0, 24.0), (5 * 3600.0, 24.0), (30.0, 0.0)],  # a shop every 3.5 min / 35 h; no window
)
def test_populate_writes_the_assigners_cases(tmp_path: Path, interval_s: float, window_h: float) -> None:
    bulk = loaded(tmp_path / "bulk", interval_s, window_h, with_cases=True)
    assigned = loaded(tmp_path / "assigned", interval_s, window_h, with_cases=False)
    with assigned.transaction():
        while assign_new(assigned, window_h):
            pass
    assert cases(bulk) == cases(assigned)
    assert len(cases(bulk)) > 7
    progress = "SELECT last_rowid FROM case_progress"
    assert bulk.execute(progress).fetchone()[0] == assigned.execute(progress).fetchone()[0] == 300
    with bulk.transaction():  # the assigner carries on after the bulk load, with new ids
        assert assign_new(bulk, window_h) == 0
        bulk.execute(
            "INSERT INTO cases (shop_id, first_opened_at, last_opened_at, occurrences, head_incident_id)"
            " VALUES ('shop-x', 'a', 'a', 1, 'x')"
        )
    bulk.close()
    assigned.close()
