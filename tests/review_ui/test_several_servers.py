"""Several review processes on one database (issue 16): a verdict given on two at once is
recorded once, and only one process sends reminders, another taking over when it stops.
Runs on SQLite and, in the PostgreSQL pass of .ci/test, on PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

from review_ui.clock import ManualClock
from review_ui.db import Store
from review_ui.review import Reviewer, ReviewError, Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed, make_config
from tests.review_ui.support import Inbox, incident_message, wait_until
from tests.review_ui.test_reminders import add_shop
from tests.support.database import UsersTemplate


def test_a_verdict_given_twice_at_once_is_recorded_once(server: ReviewServer, feed: Feed) -> None:
    iid = feed.send(incident_message())
    stores = [Store(server.config.database) for _ in range(4)]  # four processes' connections
    reviewers = [Reviewer(store, server.clock, 24, "zh-CN") for store in stores]
    start = threading.Barrier(len(reviewers))
    outcomes: list[str] = []

    def decide(reviewer: Reviewer, user: str) -> None:
        start.wait()
        try:
            reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", user)
            outcomes.append("recorded")
        except ReviewError as exc:
            outcomes.append(f"refused {exc.status_code}")

    threads = [
        threading.Thread(target=decide, args=(reviewer, f"inspector{n}"))
        for n, reviewer in enumerate(reviewers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    try:
        assert sorted(outcomes) == ["recorded"] + ["refused 409"] * 3
        db = server.store.read()
        assert db.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM workflow").fetchone()[0] == 1
    finally:
        for store in stores:
            store.close()


def test_one_review_process_sends_the_reminders_and_another_takes_over(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    config = make_config(tmp_path, smtp={"host": "127.0.0.1", "port": port})
    users_db.seed(config)
    first, second = ReviewServer(config, clock=clock), ReviewServer(config, clock=clock)
    feed = Feed(config)
    add_shop(first, "email", "owner@shop.example")
    try:
        first.worker.start()
        wait_until(lambda: _lease_holder(first) is not None, 5, "the first worker holds the lease")
        second.worker.start()
        leader = _lease_holder(first)
        assert leader == first.worker.lease.holder  # type: ignore[union-attr]
        for n in range(3):
            iid = feed.send(incident_message(shop_id="shop-12"))
            (first if n % 2 else second).context.reviewer.give_verdict(
                iid, Verdict.CONFIRMED, None, "", "inspector"
            )
            first.worker.wake()
            second.worker.wake()
        wait_until(lambda: len(inbox.messages) >= 3, 10, "three reminders sent")
        first.worker.stop()  # a clean stop hands the lease on at once
        iid = feed.send(incident_message(shop_id="shop-12"))
        second.context.reviewer.give_verdict(iid, Verdict.CONFIRMED, None, "", "inspector")
        second.worker.wake()
        wait_until(lambda: len(inbox.messages) >= 4, 10, "the second process sends the next")
        assert _lease_holder(first) == second.worker.lease.holder  # type: ignore[union-attr]
        sent = first.store.read().execute("SELECT count(*) FROM reminders WHERE status = 'sent'")
        assert sent.fetchone()[0] == 4 and len(inbox.messages) == 4  # none twice
    finally:
        first.worker.stop()
        second.worker.stop()
        feed.db.close()
        first.store.close()
        second.store.close()


def _lease_holder(server: ReviewServer) -> str | None:
    row = server.store.read().execute("SELECT holder FROM leases WHERE name = 'reminders'").fetchone()
    return None if row is None else str(row[0])
