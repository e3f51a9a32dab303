"""The incident state machine: one shop frontage, one open incident at a time.

Per monitored zone, each step:

- A non-person object inside the zone (ZoneCheck.mask) becomes a *candidate*; it
  *qualifies* while its track is stationary. Dwell counts from the first frame
  timestamp at which it was seen in the zone.
- OPENED when a qualifying candidate has been in the zone `dwell_s` seconds and is
  not under cooldown. The objects that did it are the incident's *members*.
- UPDATED when the member set changes place (at most once per `change_debounce_s`),
  and otherwise every `update_every_s` as a heartbeat, never once per frame.
- CLEARED once no qualifying object has been seen for `clear_s` (exit hysteresis:
  a pedestrian walking in front of a table does not end it), or at once when the
  zone's schedule ends (reason `schedule`). Cleared objects then cannot reopen an
  incident for `cooldown_s`, matched by track id or by place (IoU).

Track-id churn does not spam updates: a new track that appears where a candidate
that was not seen this frame stood (IoU >= `adopt_iou`) takes that candidate's
place, its dwell and its membership.

An event lists each physical object once (edge.incidents.objects.distinct_objects):
duplicate boxes of one object are dropped from `IncidentEvent.objects` only. The
decisions above and the persisted state keep every member, so the dropping never
changes when an incident opens, updates or clears.

Persistence (edge.incidents.persistence, edge.incidents.store) lets an open incident
survive a restart: on the first step the engine loads it, resumes the same
incident_id with seq continuing, re-anchors its times by wall clock (stream time
restarts at 0 for a file and monotonic time changes across processes), and gives
its objects `clear_s` from the resume to be seen again, by place, before it clears.
A resumed incident first seen before the stream began reports the stream's start
as `first_seen_t`; its age stays in `dwell_s` and `first_seen_utc`.

A *candidate* survives a restart too, so a violation is not reported late. Per zone
with no open incident, the candidates that have qualified (been stationary) at least
once are one row: each object's box, its first-seen and last-seen wall time. The row
is written when that set of objects changes (a candidate qualifies for the first time
or is forgotten; an id adopted by place is no change), never once per frame, and is
deleted when the candidates open an incident, vanish, or the schedule ends. On the
first step a stored object is dropped when more than `dwell_s + clear_s` passed
between its stored last-seen time and the resume (its last-seen time is only as fresh
as the row's last write, which for a stationary candidate lies less than `dwell_s`
before the restart: a restart shorter than `clear_s` never loses one). The others
come back like a resumed incident's objects: found again by place (IoU >= `adopt_iou`,
any new track id) within `clear_s` of the resume, they continue their dwell from the
stored first-seen wall time; not found, they are forgotten and the row is deleted.
While an incident is open its row stands for the zone: objects that would only join
it start their dwell again after a restart. A rebuilt engine (zones swapped, a failed
transaction) resumes its candidates the same way.

The event types (edge.incidents.types), the persisted records (edge.incidents.persistence),
the per-zone working state (edge.incidents.state) and the restart reconcile
(edge.incidents.resume) live in their own modules.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge.incidents.objects import DUPLICATE_COVER, distinct_objects, places_differ
from edge.incidents.persistence import (
    IncidentStoreLike,
    NullIncidentStore,
    StoredCandidate,
    StoredCandidateObject,
    StoredCooldown,
    StoredIncident,
)
from edge.incidents.resume import Resume
from edge.incidents.state import Candidate, Cooldown, OpenIncident, ZoneState
from edge.incidents.types import (
    Box,
    ClearReason,
    IncidentEvent,
    IncidentEventKind,
    IncidentObject,
    StreamStart,
    ZoneCheckLike,
    ZoneFileLike,
    ZoneLike,
)
from edge.track import TrackedFrame
from models.classes import PEOPLE_CLASSES
from models.postprocess import box_iou
from models.types import Frame


@dataclass(frozen=True)
class EngineConfig:
    """Engine knobs that are not per zone; times in seconds."""

    default_update_every_s: float = 300.0
    default_cooldown_s: float = 300.0
    change_debounce_s: float = 10.0  # least time between two set-change updates
    adopt_iou: float = 0.5  # a new track this close to an unseen candidate is that candidate
    cooldown_iou: float = 0.5  # a cleared object this close counts as the same object
    duplicate_cover: float | None = DUPLICATE_COVER  # events list such boxes once; None: all

    def __post_init__(self) -> None:
        if self.duplicate_cover is not None and not 0.0 < self.duplicate_cover <= 1.0:
            raise ValueError(
                f"EngineConfig.duplicate_cover: expected 0 < value <= 1, got {self.duplicate_cover}"
            )


class IncidentEngine:
    """Turns tracked, zoned detections into incident events; one per camera."""

    def __init__(
        self,
        zone_file: ZoneFileLike,
        camera_id: str,
        store: IncidentStoreLike | None = None,
        id_factory: Callable[[], uuid.UUID | str] = uuid.uuid4,
        wall_time: Callable[[float], datetime] | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.config = config or EngineConfig()
        self._zones: dict[str, ZoneLike] = {z.id: z for z in zone_file.zones}
        self._store: IncidentStoreLike = store or NullIncidentStore()
        self._id_factory = id_factory
        self._wall_time = wall_time or StreamStart()
        self._states: dict[str, ZoneState] = {}
        self._step = 0
        self._keys = itertools.count(1)  # candidate keys, unique per engine
        self._resumed = False
        self._stream_start_t = 0.0  # the earliest stream time an event reports

    def open_incidents(self) -> dict[str, str]:
        """zone_id -> incident_id of the incidents open now."""
        return {z: s.incident.incident_id for z, s in self._states.items() if s.incident is not None}

    def evidence_due(self, t: float, within_s: float) -> bool:
        """Whether an event with evidence (opened, updated) may come within `within_s` of stream time t.

        True while a stationary object waits out its zone's dwell, an open incident's periodic
        update is that close, or its objects moved since the last event: the node keeps a
        main-stream picture ready only then (edge.capture.StillCamera).
        """
        for zone_id, state in self._states.items():
            zone = self._zones.get(zone_id)
            if zone is None:
                continue
            if any(
                c.qualifies and not c.member and not self._cooling(state, c)
                for c in state.candidates.values()
            ):
                return True
            incident = state.incident
            if incident is None:
                continue
            if t - incident.last_event_t >= self._update_every_s(zone) - within_s:
                return True
            if places_differ(tuple(c.xyxy for c in self._members(state)), incident.emitted_boxes):
                return True
        return False

    def step(
        self, frame: Frame, tracked: TrackedFrame, checks: Mapping[str, ZoneCheckLike]
    ) -> list[IncidentEvent]:
        """Advance to `frame.ts`. `checks` are ZoneMembership's answers for `tracked.detections`."""
        self._step += 1
        events: list[IncidentEvent] = []
        if not self._resumed:
            self._resumed = True
            self._stream_start_t = min(0.0, frame.ts)
            events.extend(self._resume(frame))
        det = tracked.detections
        n = len(det)
        not_person = ~det.class_mask(PEOPLE_CLASSES) if n else np.zeros(0, bool)
        for zone_id, check in checks.items():
            zone = self._zones.get(zone_id)
            if zone is None:
                continue
            state = self._states.setdefault(zone_id, ZoneState())
            if not check.active:
                if state.incident is not None:
                    events.append(self._clear(frame, zone, state, ClearReason.SCHEDULE))
                state.candidates.clear()
                state.best = None
            else:
                mask = np.asarray(check.mask, bool)
                if mask.shape != (n,):
                    raise ValueError(f"ZoneCheck[{zone_id}].mask: expected ({n},), got {mask.shape}")
                self._observe(state, zone, frame, tracked, np.flatnonzero(mask & not_person))
                events.extend(self._decide(frame, zone, state))
            self._save_candidates(frame, zone_id, state)
        return events

    # --- candidates ---

    def _observe(
        self, state: ZoneState, zone: ZoneLike, frame: Frame, tracked: TrackedFrame, rows: np.ndarray
    ) -> None:
        t = frame.ts
        det = tracked.detections
        assert det.tracker_id is not None  # TrackedFrame guarantees it
        by_tracker = {c.tracker_id: c for c in state.candidates.values() if c.tracker_id is not None}
        for c in state.candidates.values():
            c.qualifies = False
        known = [i for i in rows if int(det.tracker_id[i]) in by_tracker]
        new = [i for i in rows if int(det.tracker_id[i]) not in by_tracker]
        best_score = -1.0
        for i in [*known, *new]:
            tid = int(det.tracker_id[i])
            box: Box = tuple(float(v) for v in det.xyxy[i])  # type: ignore[assignment]
            cand = by_tracker.get(tid) or self._adopt(state, box)
            if cand is None:
                cand = Candidate(next(self._keys), tid, "", t, self._wall_time(t), t, self._step, box, 0.0)
                state.candidates[cand.key] = cand
            cand.tracker_id = tid
            cand.label = det.class_names[int(det.class_id[i])]
            cand.last_seen_t = t
            cand.seen_step = self._step
            cand.xyxy = box
            cand.confidence = float(det.confidence[i])
            cand.qualifies = bool(tracked.stationary[i])
            if cand.qualifies:
                cand.has_qualified = True
                best_score = max(best_score, cand.confidence)
        # Forget candidates unseen for longer than the hysteresis of any zone decision.
        horizon = t - float(zone.clear_s)
        for key in [k for k, c in state.candidates.items() if c.last_seen_t < horizon]:
            del state.candidates[key]
        state.cooldowns = [c for c in state.cooldowns if c.until_t > t]
        if best_score >= 0 and (state.best is None or best_score > state.best[0]):
            state.best = (best_score, frame)
        if not state.candidates and state.incident is None:
            state.best = None

    def _adopt(self, state: ZoneState, box: Box) -> Candidate | None:
        """The candidate not seen this step that stands where `box` is, if any."""
        unseen = [c for c in state.candidates.values() if c.seen_step != self._step]
        if not unseen:
            return None
        iou = box_iou(np.array([box], np.float32), np.array([c.xyxy for c in unseen], np.float32))[0]
        best = int(np.argmax(iou))
        return unseen[best] if iou[best] >= self.config.adopt_iou else None

    def _cooling(self, state: ZoneState, cand: Candidate) -> bool:
        for cool in state.cooldowns:
            if cand.tracker_id is not None and cand.tracker_id == cool.tracker_id:
                return True
            iou = box_iou(np.array([cand.xyxy], np.float32), np.array([cool.xyxy], np.float32))[0, 0]
            if iou >= self.config.cooldown_iou:
                return True
        return False

    # --- decisions ---

    def _decide(self, frame: Frame, zone: ZoneLike, state: ZoneState) -> list[IncidentEvent]:
        t = frame.ts
        cfg = self.config
        dwelled = [
            c
            for c in state.candidates.values()
            if c.qualifies and t - c.first_in_zone_t >= zone.dwell_s and not self._cooling(state, c)
        ]
        incident = state.incident
        if incident is None:
            if not dwelled:
                return []
            for c in dwelled:
                c.member = True
            members = self._members(state)
            first = min(members, key=lambda c: c.first_in_zone_t)
            incident = OpenIncident(
                incident_id=str(self._id_factory()),
                seq=0,
                first_seen_t=first.first_in_zone_t,
                first_seen_utc=first.first_seen_utc,
                last_event_t=t,
                last_qualifying_t=t,
                emitted_boxes=tuple(c.xyxy for c in members),
            )
            state.incident = incident
            return [self._emit(IncidentEventKind.OPENED, frame, zone, state, members)]

        if any(c.qualifies for c in state.candidates.values()):
            incident.last_qualifying_t = t
        if t - incident.last_qualifying_t >= zone.clear_s:
            return [self._clear(frame, zone, state, ClearReason.ABSENT)]
        for c in dwelled:
            c.member = True
        members = self._members(state)
        boxes = tuple(c.xyxy for c in members)
        since = t - incident.last_event_t
        every = self._update_every_s(zone)
        changed = places_differ(boxes, incident.emitted_boxes) and since >= min(cfg.change_debounce_s, every)
        if members and (changed or since >= every):
            incident.seq += 1
            incident.last_event_t = t
            incident.emitted_boxes = boxes
            return [self._emit(IncidentEventKind.UPDATED, frame, zone, state, members)]
        return []

    def _update_every_s(self, zone: ZoneLike) -> float:
        """Longest gap between two updates of an open incident in `zone`."""
        return zone.update_every_s or self.config.default_update_every_s

    def _save_candidates(self, frame: Frame, zone_id: str, state: ZoneState) -> None:
        """Write the zone's candidate row when its set of objects changed: never once per frame."""
        pending = [c for c in state.candidates.values() if c.has_qualified and state.incident is None]
        keys = frozenset(c.key for c in pending)
        if keys == state.saved_keys:
            return
        state.saved_keys = keys
        if not pending:
            self._store.delete_candidate(self.camera_id, zone_id)
            return
        pending.sort(key=lambda c: c.key)
        views = self._objects(frame, pending)
        objects = tuple(
            StoredCandidateObject(view, c.first_seen_utc, self._last_seen_utc(c))
            for c, view in zip(pending, views, strict=True)
        )
        self._store.save_candidate(
            StoredCandidate(self.camera_id, zone_id, objects, self._wall_time(frame.ts))
        )

    def _last_seen_utc(self, c: Candidate) -> datetime:
        """A restored candidate not seen again yet keeps the sighting from before the restart."""
        if c.seen_step == 0 and c.stored_seen_utc is not None:
            return c.stored_seen_utc
        return self._wall_time(c.last_seen_t)

    def _members(self, state: ZoneState) -> list[Candidate]:
        return sorted((c for c in state.candidates.values() if c.member), key=lambda c: c.key)

    def _objects(self, frame: Frame, members: Sequence[Candidate]) -> tuple[IncidentObject, ...]:
        w, h = frame.resolution_wh
        return tuple(
            IncidentObject(
                label=c.label,
                confidence=round(c.confidence, 4),
                xyxy=c.xyxy,
                bbox=(c.xyxy[0] / w, c.xyxy[1] / h, c.xyxy[2] / w, c.xyxy[3] / h),
                tracker_id=c.tracker_id,
            )
            for c in members
        )

    def _emit(
        self,
        kind: IncidentEventKind,
        frame: Frame,
        zone: ZoneLike,
        state: ZoneState,
        members: Sequence[Candidate],
    ) -> IncidentEvent:
        incident = state.incident
        assert incident is not None
        objects = self._objects(frame, members)
        evidence = state.best[1] if state.best is not None else frame
        event = self._event(kind, frame.ts, zone.id, zone, incident, objects, None, evidence)
        last_seen = max((c.last_seen_t for c in members), default=frame.ts)
        self._store.save_open(
            StoredIncident(
                incident_id=incident.incident_id,
                camera_id=self.camera_id,
                zone_id=zone.id,
                seq=incident.seq,
                objects=objects,  # every member: a resume finds them again by place
                first_seen_t=self._reported_first_seen_t(incident),
                last_event_t=frame.ts,
                first_seen_utc=incident.first_seen_utc,
                last_event_utc=self._wall_time(frame.ts),
                last_seen_utc=self._wall_time(last_seen),
            )
        )
        return event

    def _event(
        self,
        kind: IncidentEventKind,
        t: float,
        zone_id: str,
        zone: ZoneLike | None,
        incident: OpenIncident,
        objects: tuple[IncidentObject, ...],
        reason: ClearReason | None,
        evidence: Frame | None,
    ) -> IncidentEvent:
        shop = zone.shop if zone is not None else None
        return IncidentEvent(
            event=kind,
            incident_id=incident.incident_id,
            seq=incident.seq,
            camera_id=self.camera_id,
            zone_id=zone_id,
            shop_id=shop.id if shop is not None else None,
            shop_name=shop.name if shop is not None else None,
            t=t,
            first_seen_t=self._reported_first_seen_t(incident),
            utc=self._wall_time(t),
            objects=distinct_objects(objects, self.config.duplicate_cover),
            dwell_s=t - incident.first_seen_t,
            reason=reason,
            evidence_frame=evidence,
            evidence_t=evidence.ts if evidence is not None else None,
        )

    def _reported_first_seen_t(self, incident: OpenIncident) -> float:
        """Stream time never before the stream began; the full age is in dwell_s."""
        return max(self._stream_start_t, incident.first_seen_t)

    def _clear(self, frame: Frame, zone: ZoneLike, state: ZoneState, reason: ClearReason) -> IncidentEvent:
        incident = state.incident
        assert incident is not None
        t = frame.ts
        members = self._members(state)
        objects = self._objects(frame, members)
        incident.seq += 1
        cooldown_s = zone.cooldown_s if zone.cooldown_s is not None else self.config.default_cooldown_s
        state.cooldowns.extend(Cooldown(c.label, c.xyxy, c.tracker_id, t + cooldown_s) for c in members)
        self._store.save_cleared(
            incident.incident_id,
            StoredCooldown(
                self.camera_id, zone.id, objects, self._wall_time(t + cooldown_s), self._wall_time(t)
            ),
        )
        for c in members:
            c.member = False
        state.incident = None
        state.best = None
        return self._event(IncidentEventKind.CLEARED, t, zone.id, zone, incident, objects, reason, None)

    def _resume(self, frame: Frame) -> list[IncidentEvent]:
        """Pick up incidents, cooldowns and candidates persisted by an earlier run (edge.incidents.resume)."""
        t0 = frame.ts
        resume = Resume(
            self._store, self.camera_id, self._zones, self._states, self._keys, t0, self._wall_time(t0)
        )
        events = [
            self._event(
                IncidentEventKind.CLEARED,
                t0,
                zone_id,
                None,
                incident,
                objects,
                ClearReason.ZONE_REMOVED,
                None,
            )
            for zone_id, incident, objects in resume.incidents()
        ]
        resume.cooldowns()
        resume.candidates()
        return events
