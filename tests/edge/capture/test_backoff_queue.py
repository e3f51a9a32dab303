from __future__ import annotations

import threading

import numpy as np
import pytest

from edge.capture import Backoff, BackoffPolicy, DropPolicy, FrameQueue, Sampler
from models.types import Frame


def frame(ts: float, camera_id: str = "cam") -> Frame:
    return Frame(np.zeros((4, 4, 3), np.uint8), camera_id, ts)


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_to_the_cap_and_retries_forever() -> None:
    backoff = Backoff(BackoffPolicy(initial_s=0.5, factor=2, max_s=4, jitter_fraction=0.5), rng=lambda: 0.0)
    assert [backoff.next_delay_s() for _ in range(7)] == [0.5, 1, 2, 4, 4, 4, 4]
    for _ in range(5000):  # no overflow however long a camera stays down
        assert backoff.next_delay_s() == 4
    backoff.reset()
    assert backoff.next_delay_s() == 0.5


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 8.0), (0.5, 6.0), (1.0, 4.0)])
def test_backoff_jitter_stays_within_the_fraction(draw: float, expected: float) -> None:
    backoff = Backoff(BackoffPolicy(initial_s=8, max_s=8, jitter_fraction=0.5), rng=lambda: draw)
    assert backoff.next_delay_s() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0}, "initial_s"),
        ({"initial_s": 10, "max_s": 5}, "max_s"),
        ({"factor": 0.5}, "factor"),
        ({"jitter_fraction": 1.5}, "jitter_fraction"),
    ],
)
def test_backoff_policy_rejects_bad_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffPolicy(**kwargs)


def test_latest_wins_keeps_the_newest_and_counts_drops() -> None:
    clock = FakeClock()
    queue = FrameQueue(1, DropPolicy.LATEST_WINS, clock=clock)
    for ts in (1.0, 2.0, 3.0):
        clock.now += 1
        assert queue.put(frame(ts))
    assert queue.dropped_count == 2
    item = queue.get_nowait()
    assert item is not None
    assert item.frame.ts == 3.0
    # Waiting since the first unconsumed put, not the last replacement: a fast
    # camera cannot look fresh forever and starve in oldest-waiting-first order.
    assert item.waiting_since == 101.0
    assert item.enqueued_at == 103.0
    assert queue.get_nowait() is None
    assert queue.waiting_since is None


def test_latest_wins_with_capacity_drops_the_oldest() -> None:
    queue = FrameQueue(2, DropPolicy.LATEST_WINS)
    for ts in (1.0, 2.0, 3.0):
        queue.put(frame(ts))
    got = [queue.get_nowait(), queue.get_nowait()]
    assert [g.frame.ts for g in got if g] == [2.0, 3.0]


def test_wait_blocks_until_consumed() -> None:
    queue = FrameQueue(1, DropPolicy.WAIT)
    queue.put(frame(1.0))
    put_done = threading.Event()

    def producer() -> None:
        queue.put(frame(2.0))
        put_done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert not put_done.wait(0.2)  # full: the producer waits, nothing dropped
    first = queue.get(timeout_s=1)
    assert first is not None and first.frame.ts == 1.0
    assert put_done.wait(2)
    second = queue.get(timeout_s=1)
    assert second is not None and second.frame.ts == 2.0
    assert queue.dropped_count == 0
    thread.join(2)


def test_wait_gives_up_on_stop_and_close_wakes_consumers() -> None:
    queue = FrameQueue(1, DropPolicy.WAIT)
    queue.put(frame(1.0))
    stop = threading.Event()
    stop.set()
    assert queue.put(frame(2.0), stop, poll_s=0.01) is False
    queue.close()
    assert queue.get(timeout_s=1) is not None  # drains what is left
    assert queue.get(timeout_s=5) is None  # then returns at once
    assert queue.exhausted
    assert queue.put(frame(3.0)) is False


def test_sampler_takes_one_per_interval_and_resyncs_after_a_gap() -> None:
    sampler = Sampler(2.0)
    times = [i / 10 for i in range(0, 61)]  # 10 fps for 6 s
    taken = [t for t in times if sampler.offer(t)]
    assert taken == pytest.approx([0.0, 2.0, 4.0, 6.0])
    assert sampler.offer(30.0)  # after a reconnect gap: take at once, no burst
    assert not sampler.offer(31.0)
    assert sampler.offer(32.0)


def test_sampler_accepts_keyframes_slightly_early() -> None:
    sampler = Sampler(2.0)
    keyframes = [i * 0.96 for i in range(12)]
    taken = [t for t in keyframes if sampler.offer(t)]
    gaps = np.diff(taken)
    assert gaps.min() >= 1.8 and gaps.max() <= 2.9
