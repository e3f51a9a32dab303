"""Wakes the queue's Server-Sent-Event streams when something may have changed.

Writers (the ingest's on_change, verdicts, the reminder worker) call `notify()` from any thread;
each stream waits on its own asyncio.Event, set through its loop's call_soon_threadsafe. What
changed is never carried here: a woken stream re-reads the change token from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class ChangeNotifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed; its stream is gone
                loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        """Server shutdown: every stream ends, so the HTTP server can stop."""
        self._closed = True
        self.notify()

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """For one stream: registered before its first read, so no notification falls between
        reading the token and starting to wait."""
        subscription = Subscription(self, asyncio.get_running_loop(), asyncio.Event())
        key = (subscription.loop, subscription.event)
        with self._lock:
            self._waiters.add(key)
        if self._closed:
            subscription.event.set()
        try:
            yield subscription
        finally:
            with self._lock:
                self._waiters.discard(key)


@dataclass(frozen=True)
class Subscription:
    notifier: ChangeNotifier
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event

    async def wait(self, timeout_s: float) -> bool:
        """True when notified since the last wait (or closed), False after `timeout_s`."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout_s)
        except TimeoutError:
            return self.notifier.closed
        self.event.clear()
        return True
