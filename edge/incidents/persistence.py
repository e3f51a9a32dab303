"""The incident engine's persistence seam: what it saves so a restart resumes its incidents.

edge.incidents.store implements `IncidentStoreLike` on SQLite; `NullIncidentStore` remembers
nothing. Wall-clock UTC is what a resume uses; the stream seconds are for people reading.
The objects saved are all of an incident's members, duplicate boxes included, because a
resume and a cooldown find objects again by place.

Besides open incidents and cooldowns, a zone's *candidate* is saved: the stationary objects
whose dwell is running while the zone has no open incident (at most one per zone), so a
restart continues their dwell instead of starting it again (see edge.incidents.engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from edge.incidents.types import IncidentObject


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


@dataclass(frozen=True)
class StoredCandidateObject:
    """One object of a stored candidate, with the wall times that carry its dwell across a restart."""

    view: IncidentObject  # where it stood at the row's last write
    first_seen_utc: datetime  # its dwell counts from here
    last_seen_utc: datetime  # as of the row's last write: rows are not rewritten every frame


@dataclass(frozen=True)
class StoredCandidate:
    """A zone's objects whose dwell runs while the zone has no open incident; one per zone.

    Written when the set of objects changes, not every frame; `saved_utc` is when.
    """

    camera_id: str
    zone_id: str
    objects: tuple[StoredCandidateObject, ...]
    saved_utc: datetime


class IncidentStoreLike(Protocol):
    def save_open(self, incident: StoredIncident) -> None: ...
    def save_cleared(self, incident_id: str, cooldown: StoredCooldown) -> None: ...
    def load_open(self, camera_id: str) -> list[StoredIncident]: ...
    def load_cooldowns(self, camera_id: str, now_utc: datetime) -> list[StoredCooldown]: ...
    def save_candidate(self, candidate: StoredCandidate) -> None: ...
    def delete_candidate(self, camera_id: str, zone_id: str) -> None: ...
    def load_candidates(self, camera_id: str) -> list[StoredCandidate]: ...


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

    def save_candidate(self, candidate: StoredCandidate) -> None:
        pass

    def delete_candidate(self, camera_id: str, zone_id: str) -> None:
        pass

    def load_candidates(self, camera_id: str) -> list[StoredCandidate]:
        return []
