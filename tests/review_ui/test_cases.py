"""Cases (a shop's repeat incidents decided once), the undo window, and already-cleared incidents.

Real SQLite, the ingest's own insert path, a real SMTP server for the reminder that leaves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from review_ui.cases import CaseAssigner, assign_new, case_of, siblings
from review_ui.clock import ManualClock
from review_ui.review import ClearedAction, RejectReason, ReviewError, Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed
from tests.review_ui.support import T0, Inbox, incident_message, login
from tests.review_ui.test_reminders import add_shop, build
from tests.support.database import UsersTemplate
from uplink.messages import IncidentEventKind

UNDO_S = 30


@pytest.fixture
def grouped(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate, smtp: tuple[Inbox, int]
) -> Iterator[tuple[ReviewServer, Feed, Inbox]]:
    inbox, port = smtp
    server = build(
        tmp_path,
        clock,
        users_db,
        smtp={"host": "127.0.0.1", "port": port},
        cases={"window_h": 2},
        reminders={"poll_s": 0.2, "undo_s": UNDO_S, "backoff_base_s": 5, "backoff_max_s": 60},
    )
    add_shop(server, "email", "owner@shop.example")
    feed = Feed(server.config)
    yield server, feed, inbox
    feed.db.close()
    server.store.close()


def occurrence(feed: Feed, minutes: float, shop_id: str = "shop-12", cleared: bool = False) -> str:
    """One incident of the shop opened `minutes` after T0 (and cleared a minute later if asked)."""
    at = T0 + timedelta(minutes=minutes)
    iid = feed.send(incident_message(shop_id=shop_id, first_seen_at=at, at=at))
    if cleared:
        feed.send(
            incident_message(
                uuid.UUID(iid),
                1,
                IncidentEventKind.CLEARED,
                shop_id=shop_id,
                first_seen_at=at,
                at=at + timedelta(minutes=1),
            )
        )
    return iid


def assign(server: ReviewServer) -> None:
    server.cases.run_once()


def statuses(server: ReviewServer, ids: list[str]) -> list[str]:
    db = server.store.read()
    found = dict(db.execute("SELECT incident_id, status FROM workflow").fetchall())
    return [found.get(i, "pending") for i in ids]


def test_repeat_incidents_of_one_shop_are_one_case_with_one_reminder(
    grouped: tuple[ReviewServer, Feed, Inbox], clock: ManualClock
) -> None:
    server, feed, inbox = grouped
    ids = [occurrence(feed, m, cleared=m < 60) for m in (0, 30, 60)]
    other = occurrence(feed, 10, shop_id="shop-99")
    late = occurrence(feed, 60 + 121)  # over 2 h after the case's last occurrence: a case of its own
    assign(server)
    db = server.store.read()
    assert siblings(db, ids[0]) == ids and siblings(db, other) == [other] and siblings(db, late) == [late]
    from review_ui import queries

    page = queries.queue(db, queries.QueueFilter())
    assert [r["incident_id"] for r in page.rows] == [other, ids[2], late]  # the head stands for its case
    assert page.counts["pending"] == 3
    # Filtered, the occurrences behind a head are counted from the incidents (another query).
    assert queries.queue(db, queries.QueueFilter(shop_id="shop-12")).counts["pending"] == 2
    assert next(r for r in page.rows if r["incident_id"] == ids[2])["occurrences"] == 3

    result = server.context.reviewer.give_verdict(ids[0], Verdict.CONFIRMED, None, "", "inspector")
    assert sorted(result.decided) == sorted(ids) and len(result.reminder_ids) == 1
    assert statuses(server, ids) == ["confirmed"] * 3
    reminder = db.execute("SELECT incident_id FROM reminders").fetchall()
    assert reminder == [(ids[2],)]  # for the newest occurrence: the freshest evidence

    assert server.dispatcher.run_once() == 0, "nothing leaves inside the undo window"
    clock.advance(UNDO_S + 1)
    assert server.dispatcher.run_once() == 1
    assert len(inbox.messages) == 1
    assert statuses(server, ids) == ["reminded"] * 3

    # The shop's newest case decided: its next incident starts a new case, even inside the window.
    server.context.reviewer.give_verdict(late, Verdict.REJECTED, RejectReason.PERMITTED, "", "inspector")
    again = occurrence(feed, 60 + 130)
    assign(server)
    assert siblings(server.store.read(), again) == [again]


def test_undo_takes_the_whole_decision_back_until_the_reminder_leaves(
    grouped: tuple[ReviewServer, Feed, Inbox], clock: ManualClock
) -> None:
    server, feed, inbox = grouped
    reviewer = server.context.reviewer
    ids = [occurrence(feed, m) for m in (0, 5)]
    assign(server)
    reviewer.give_verdict(ids[1], Verdict.CONFIRMED, None, "chairs again", "inspector")
    window = reviewer.undo_window(ids[0])
    assert window is not None and window["seconds_left"] == UNDO_S and window["user"] == "inspector"
    with pytest.raises(ReviewError) as refused:
        reviewer.undo_verdict(ids[0], "someone-else", may_undo_others=False)
    assert refused.value.status_code == 403
    clock.advance(10)
    assert reviewer.undo_verdict(ids[0], "inspector", may_undo_others=False) == ids
    db = server.store.read()
    assert statuses(server, ids) == ["pending", "pending"]
    assert db.execute("SELECT count(*) FROM reminders").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0
    assert db.execute("SELECT what FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0] == "verdict.undone"
    assert reviewer.undo_window(ids[0]) is None

    # Decided again; once the window is over the reminder leaves and undo is refused.
    reviewer.give_verdict(ids[0], Verdict.CONFIRMED, None, "", "inspector")
    clock.advance(UNDO_S + 1)
    assert reviewer.undo_window(ids[0]) is None
    with pytest.raises(ReviewError) as late:
        reviewer.undo_verdict(ids[0], "inspector", may_undo_others=True)
    assert late.value.code == "undo_too_late"
    assert server.dispatcher.run_once() == 1 and len(inbox.messages) == 1


def test_a_cleared_incident_asks_remind_anyway_or_close_as_rectified(
    grouped: tuple[ReviewServer, Feed, Inbox], clock: ManualClock
) -> None:
    server, feed, _inbox = grouped
    reviewer = server.context.reviewer
    gone = occurrence(feed, 0, cleared=True)
    gone_too = occurrence(feed, 200, cleared=True)
    assign(server)
    with pytest.raises(ReviewError) as asked:
        reviewer.give_verdict(gone, Verdict.CONFIRMED, None, "", "inspector")
    assert asked.value.code == "needs_cleared_action" and asked.value.status_code == 409
    closed = reviewer.give_verdict(
        gone, Verdict.CONFIRMED, None, "", "inspector", cleared_action=ClearedAction.CLOSE
    )
    assert closed.status == "rectified" and closed.reminder_ids == []
    reminded = reviewer.give_verdict(
        gone_too, Verdict.CONFIRMED, None, "", "inspector", cleared_action=ClearedAction.REMIND
    )
    assert reminded.status == "confirmed" and len(reminded.reminder_ids) == 1
    # A rejection needs no choice: nothing would be sent anyway.
    third = occurrence(feed, 400, cleared=True)
    assign(server)
    reviewer.give_verdict(third, Verdict.REJECTED, RejectReason.OTHER, "", "inspector")
    assert statuses(server, [gone, gone_too, third]) == ["rectified", "confirmed", "rejected"]


def test_the_pages_show_the_case_the_undo_and_the_cleared_question(
    grouped: tuple[ReviewServer, Feed, Inbox], clock: ManualClock
) -> None:
    server, feed, _inbox = grouped
    ids = [occurrence(feed, m) for m in (0, 5, 9)]
    cleared = occurrence(feed, 0, shop_id="shop-99", cleared=True)
    assign(server)
    with TestClient(server.app, base_url="https://testserver") as client:
        login(client, "inspector")
        queue = client.get("/queue?lang=zh-CN").text
        assert queue.count("data-incident=") == 2 and "3 次" in queue
        page = client.get(f"/incidents/{ids[0]}?lang=zh-CN").text
        assert 'id="case"' in page and "确认违规 (3 次)" in page
        assert 'id="cleared-warning"' not in page
        asked = client.get(f"/incidents/{cleared}?lang=zh-CN").text
        assert 'id="cleared-warning"' in asked and 'value="close"' in asked and 'value="remind"' in asked
        csrf = asked.split('name="csrf_token" value="')[1].split('"')[0]
        # Cleared: a plain confirm (an old page, a script) is sent back to the question.
        plain = client.post(
            f"/incidents/{cleared}/verdict",
            data={"verdict": "confirmed", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert plain.status_code == 303 and plain.headers["location"].endswith("#decision")
        assert statuses(server, [cleared]) == ["pending"]

        response = client.post(
            f"/incidents/{ids[2]}/verdict",
            data={"verdict": "confirmed", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert response.status_code == 303
        decided = client.get(f"/incidents/{ids[2]}?lang=zh-CN").text
        assert 'id="undo-form"' in decided and "秒后发出" in decided
        api = client.post(f"/api/v1/incidents/{ids[0]}/undo", headers={"X-CSRF-Token": csrf})
        assert api.status_code == 200 and sorted(api.json()["reopened"]) == sorted(ids)
        assert statuses(server, ids) == ["pending"] * 3
        confirmed = client.post(
            f"/api/v1/incidents/{ids[0]}/verdict",
            json={"verdict": "confirmed"},
            headers={"X-CSRF-Token": csrf},
        ).json()
        assert confirmed["undo_s"] == UNDO_S and len(confirmed["decided"]) == 3

        # An admin may undo an inspector's verdict; a viewer may not touch it.
        login(client, "viewer")
        csrf = client.get("/queue").text.split('data-csrf="')[1].split('"')[0]
        assert (
            client.post(f"/api/v1/incidents/{ids[0]}/undo", headers={"X-CSRF-Token": csrf}).status_code == 403
        )
        login(client, "admin")
        csrf = client.get("/queue").text.split('data-csrf="')[1].split('"')[0]
        assert (
            client.post(f"/api/v1/incidents/{ids[0]}/undo", headers={"X-CSRF-Token": csrf}).status_code == 200
        )


def test_an_older_incident_arriving_late_joins_but_does_not_become_the_head(
    grouped: tuple[ReviewServer, Feed, Inbox],
) -> None:
    server, feed, _inbox = grouped
    newer = occurrence(feed, 30)
    assign(server)
    older = occurrence(feed, 10)  # stored after, opened before
    assign(server)
    case = case_of(server.store.read(), older)
    assert case is not None and case["head_incident_id"] == newer and case["occurrences"] == 2
    assert case["first_opened_at"] < case["last_opened_at"]


def test_a_second_review_process_does_not_assign_twice(grouped: tuple[ReviewServer, Feed, Inbox]) -> None:
    server, feed, _inbox = grouped
    other = CaseAssigner(server.store, 2)  # another review process on the same database
    ids = [occurrence(feed, m) for m in (0, 1)]
    assert other.run_once() == 2 and server.cases.run_once() == 0
    ids.append(occurrence(feed, 2))
    assert server.cases.run_once() == 1 and other.run_once() == 0
    assert siblings(server.store.read(), ids[0]) == ids


def test_grouping_off_gives_every_incident_its_own_case(
    tmp_path: Path, clock: ManualClock, users_db: UsersTemplate
) -> None:
    server = build(tmp_path, clock, users_db, cases={"window_h": 0})
    feed = Feed(server.config)
    ids = [occurrence(feed, m) for m in (0, 1, 2)]
    with server.store.write() as db:
        assert assign_new(db, 0) == 3
        assert assign_new(db, 0) == 0
    assert all(siblings(server.store.read(), i) == [i] for i in ids)
    feed.db.close()
    server.store.close()
