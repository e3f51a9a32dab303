"""A bounded hand-off between one camera thread and the detector, with a named drop policy."""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from models.types import Frame


class DropPolicy(enum.Enum):
    """What `put` does when the queue is full.

    LATEST_WINS: live cameras. The oldest unconsumed frame is dropped so the
        detector always sees the newest picture; the camera thread never blocks.
    WAIT: file replay. `put` blocks until the consumer takes a frame (or stop),
        so every sampled frame of a recording is analysed.
    """

    LATEST_WINS = "latest_wins"
    WAIT = "wait"


@dataclass(frozen=True)
class QueuedFrame:
    frame: Frame
    enqueued_at: float  # clock() when put
    waiting_since: float  # clock() when this queue last went from empty to non-empty


class FrameQueue:
    """Bounded FIFO of frames for one camera.

    `waiting_since` is when the queue last became non-empty and is *not* reset
    when LATEST_WINS replaces a frame: a fast camera cannot look "fresh" forever
    and be starved by the scheduler's oldest-waiting-first rule.
    `on_ready` is called (outside the lock) after each put, to wake a consumer
    that watches many queues.
    """

    def __init__(
        self,
        capacity: int = 1,
        policy: DropPolicy = DropPolicy.LATEST_WINS,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"FrameQueue.capacity: expected >= 1, got {capacity}")
        self.capacity = capacity
        self.policy = policy
        self._clock = clock
        self._on_ready = on_ready or (lambda: None)
        self._items: deque[QueuedFrame] = deque()
        self._waiting_since: float | None = None
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        self.put_count = 0
        self.dropped_count = 0

    def set_on_ready(self, on_ready: Callable[[], None]) -> None:
        self._on_ready = on_ready

    def put(self, frame: Frame, stop: threading.Event | None = None, poll_s: float = 0.1) -> bool:
        """Add a frame; False if it was not queued (closed, or `stop` set while waiting)."""
        with self._lock:
            if self.policy is DropPolicy.WAIT:
                while len(self._items) >= self.capacity and not self._closed:
                    if stop is not None and stop.is_set():
                        return False
                    self._not_full.wait(poll_s)
            if self._closed:
                return False
            now = self._clock()
            since = now if not self._items or self._waiting_since is None else self._waiting_since
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped_count += 1
            self._waiting_since = since
            self._items.append(QueuedFrame(frame, now, since))
            self.put_count += 1
            self._not_empty.notify()
        self._on_ready()
        return True

    def get_nowait(self) -> QueuedFrame | None:
        with self._lock:
            return self._pop_locked()

    def get(self, timeout_s: float | None = None) -> QueuedFrame | None:
        """The oldest frame, waiting up to `timeout_s`; None on timeout or when closed and empty."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while not self._items and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._not_empty.wait(remaining)
            return self._pop_locked()

    def _pop_locked(self) -> QueuedFrame | None:
        if not self._items:
            return None
        item = self._items.popleft()
        # The next frame (if any) has been waiting since it was put.
        self._waiting_since = self._items[0].enqueued_at if self._items else None
        self._not_full.notify()
        return item

    @property
    def waiting_since(self) -> float | None:
        """clock() since when a frame has been ready; None when empty."""
        with self._lock:
            return self._waiting_since

    def close(self) -> None:
        """No more frames: wakes every waiter; `get` drains what is left, then returns None."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
        self._on_ready()

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    @property
    def exhausted(self) -> bool:
        """Closed and empty: the camera will never deliver another frame."""
        with self._lock:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
