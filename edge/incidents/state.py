"""The engine's per-zone working state: mutable, private to edge.incidents, pruned every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from edge.incidents.types import Box
from models.types import Frame


@dataclass
class Candidate:
    key: int
    tracker_id: int | None
    label: str
    first_in_zone_t: float
    first_seen_utc: datetime  # wall time of first_in_zone_t, carried across restarts as is
    last_seen_t: float
    seen_step: int
    xyxy: Box
    confidence: float
    qualifies: bool = False
    has_qualified: bool = False  # once stationary: its zone's candidate row lists it
    member: bool = False
    stored_seen_utc: datetime | None = None  # restored: last seen before the restart


@dataclass
class OpenIncident:
    incident_id: str
    seq: int
    first_seen_t: float  # may lie before the stream began (resumed); events clamp it
    first_seen_utc: datetime  # carried across restarts as is
    last_event_t: float
    last_qualifying_t: float
    emitted_boxes: tuple[Box, ...]  # where the members were at the last event


@dataclass
class Cooldown:
    label: str
    xyxy: Box
    tracker_id: int | None
    until_t: float


@dataclass
class ZoneState:
    candidates: dict[int, Candidate] = field(default_factory=dict)
    incident: OpenIncident | None = None
    best: tuple[float, Frame] | None = None  # (score, frame) of the best view so far
    cooldowns: list[Cooldown] = field(default_factory=list)
    saved_keys: frozenset[int] | None = frozenset()  # candidates in the stored row; None: unknown
