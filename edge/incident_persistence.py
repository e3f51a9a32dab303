"""The incident engine's persistence seam: what it saves so a restart resumes its incidents.

edge.incident_store implements `IncidentStoreLike` on SQLite; `NullIncidentStore` remembers
nothing. Wall-clock UTC is what a resume uses; the stream seconds are for people reading.
The objects saved are all of an incident's members, duplicate boxes included, because a
resume and a cooldown find objects again by place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from edge.incident_types import IncidentObject


@dataclass(frozen=True)
class StoredIncident:
    """An open incident as persisted: enough to resume it after a restart."""

    incident_id: str
    camera_id: str
    zone_id: str
    seq: int  # seq of the last event emitted
    objects: tuple[IncidentObject, ...]
    first_seen_t: float  # stream seconds of the run that wrote it (informational)
    last_event_t: float
    first_seen_utc: datetime
    last_event_utc: datetime
    last_seen_utc: datetime


@dataclass(frozen=True)
class StoredCooldown:
    """Objects of a cleared incident that may not reopen one before `until_utc`."""

    camera_id: str
    zone_id: str
    objects: tuple[IncidentObject, ...]
    until_utc: datetime
    cleared_utc: datetime


class IncidentStoreLike(Protocol):
    def save_open(self, incident: StoredIncident) -> None: ...
    def save_cleared(self, incident_id: str, cooldown: StoredCooldown) -> None: ...
    def load_open(self, camera_id: str) -> list[StoredIncident]: ...
    def load_cooldowns(self, camera_id: str, now_utc: datetime) -> list[StoredCooldown]: ...


class NullIncidentStore:
    """Remembers nothing: for offline analysis and tests."""

    def save_open(self, incident: StoredIncident) -> None:
        pass

    def save_cleared(self, incident_id: str, cooldown: StoredCooldown) -> None:
        pass

    def load_open(self, camera_id: str) -> list[StoredIncident]:
        return []

    def load_cooldowns(self, camera_id: str, now_utc: datetime) -> list[StoredCooldown]:
        return []
