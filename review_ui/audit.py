"""The audit log: one row for every verdict, reminder, zone change, login and user change."""

from __future__ import annotations

import json
from collections.abc import Mapping

from review_ui.clock import Clock, iso
from uplink.database import Database


def record(
    db: Database,
    clock: Clock,
    who: str,
    what: str,
    target: str = "",
    detail: Mapping[str, object] | None = None,
    ip: str = "",
) -> None:
    """Append an audit row; call inside the same transaction as the change it describes."""
    db.execute(
        "INSERT INTO audit_log (who, what, target, at, detail, ip) VALUES (?, ?, ?, ?, ?, ?)",
        [who, what, target, iso(clock.now()), json.dumps(dict(detail or {}), ensure_ascii=False), ip],
    )
