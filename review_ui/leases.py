"""One process at a time runs the background work of a review database.

Several review servers may share one PostgreSQL database (behind one proxy): each has a
reminder worker, but only the holder of the `reminders` lease ticks (sends reminders, moves
the loop, climbs the escalation ladder), so nothing is sent twice. The holder renews the lease
every tick; when it dies, another takes over once the lease has expired (`ttl_s`).
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from review_ui.clock import Clock, iso
from review_ui.db import Store


def holder_id() -> str:
    """This process, readable in the table: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    def __init__(
        self, store: Store, clock: Clock, name: str, ttl_s: float, holder: str | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = holder or holder_id()

    def hold(self) -> bool:
        """Take or renew the lease; False while another live process holds it."""
        now = self.clock.now()
        with self.store.write() as db:
            row = db.execute("SELECT holder, expires_at FROM leases WHERE name = ?", [self.name]).fetchone()
            if row is not None and row[0] != self.holder and row[1] > iso(now):
                return False
            db.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at",
                [self.name, self.holder, iso(now + self.ttl)],
            )
        return True

    def release(self) -> None:
        """On a clean stop: the next process need not wait for the expiry."""
        with self.store.write() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", [self.name, self.holder])
