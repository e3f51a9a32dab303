"""Restart reconcile: the engine's state rebuilt from what an earlier run of the camera stored.

Open incidents come back with the same incident_id and seq continuing, re-anchored by wall
clock (stream time restarts at 0 for a file, monotonic time changes across processes); their
objects get `clear_s` from the resume to be found again by place. An incident whose zone is
gone is cleared at once (reason `zone_removed`). Cooldowns come back as stored. A stored
candidate object comes back when it was seen within `dwell_s + clear_s` of the resume.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from edge.incidents.persistence import IncidentStoreLike, StoredCandidate, StoredCooldown
from edge.incidents.state import Candidate, Cooldown, OpenIncident, ZoneState
from edge.incidents.types import IncidentObject, ZoneLike


class Resume:
    """One resume of one camera's engine, at stream time `t0` (wall time `wall0`)."""

    def __init__(
        self,
        store: IncidentStoreLike,
        camera_id: str,
        zones: Mapping[str, ZoneLike],
        states: dict[str, ZoneState],
        keys: Iterator[int],
        t0: float,
        wall0: datetime,
    ) -> None:
        self.store = store
        self.camera_id = camera_id
        self.zones = zones
        self.states = states
        self.keys = keys
        self.t0 = t0
        self.wall0 = wall0

    def stream_t(self, utc: datetime) -> float:
        return self.t0 - (self.wall0 - utc).total_seconds()

    def incidents(self) -> list[tuple[str, OpenIncident, tuple[IncidentObject, ...]]]:
        """Resume stored open incidents; returns (zone_id, incident, objects) of those whose zone is gone."""
        t0, wall0 = self.t0, self.wall0
        orphans: list[tuple[str, OpenIncident, tuple[IncidentObject, ...]]] = []
        for stored in self.store.load_open(self.camera_id):
            incident = OpenIncident(
                incident_id=stored.incident_id,
                seq=stored.seq,
                first_seen_t=self.stream_t(stored.first_seen_utc),
                first_seen_utc=stored.first_seen_utc,
                last_event_t=self.stream_t(stored.last_event_utc),
                last_qualifying_t=t0,  # the objects get clear_s from now to be seen again
                emitted_boxes=tuple(o.xyxy for o in stored.objects),
            )
            zone = self.zones.get(stored.zone_id)
            if zone is None:
                incident.seq += 1
                cooldown = StoredCooldown(self.camera_id, stored.zone_id, (), wall0, wall0)
                self.store.save_cleared(stored.incident_id, cooldown)
                orphans.append((stored.zone_id, incident, stored.objects))
                continue
            state = self.states.setdefault(zone.id, ZoneState())
            for obj in stored.objects:
                # tracker ids do not survive a restart: the object is found again by place.
                cand = Candidate(
                    next(self.keys), None, obj.label, incident.first_seen_t, incident.first_seen_utc, t0, 0,
                    obj.xyxy, obj.confidence, member=True,
                )  # fmt: skip
                state.candidates[cand.key] = cand
            state.incident = incident
        return orphans

    def cooldowns(self) -> None:
        for cool in self.store.load_cooldowns(self.camera_id, self.wall0):
            state = self.states.setdefault(cool.zone_id, ZoneState())
            until = self.stream_t(cool.until_utc)
            state.cooldowns.extend(Cooldown(o.label, o.xyxy, None, until) for o in cool.objects)

    def candidates(self) -> None:
        for stored in self.store.load_candidates(self.camera_id):
            self._candidate(stored)

    def _candidate(self, stored: StoredCandidate) -> None:
        """Objects seen recently enough wait `clear_s` to be found again by place; the rest go."""
        zone = self.zones.get(stored.zone_id)
        resumed = self.states.get(stored.zone_id)
        if zone is None or (resumed is not None and resumed.incident is not None):
            self.store.delete_candidate(self.camera_id, stored.zone_id)  # the zone is gone, or taken
            return
        state = self.states.setdefault(zone.id, ZoneState())
        max_gap_s = zone.dwell_s + zone.clear_s
        kept = [o for o in stored.objects if (self.wall0 - o.last_seen_utc).total_seconds() <= max_gap_s]
        for o in kept:
            cand = Candidate(
                next(self.keys), None, o.view.label, self.stream_t(o.first_seen_utc), o.first_seen_utc,
                self.t0, 0, o.view.xyxy, o.view.confidence,
                has_qualified=True, stored_seen_utc=o.last_seen_utc,
            )  # fmt: skip
            state.candidates[cand.key] = cand
        # A row that lost objects is rewritten (or deleted) by the next step's save of candidates.
        unchanged = len(kept) == len(stored.objects)
        state.saved_keys = frozenset(c.key for c in state.candidates.values()) if unchanged else None
