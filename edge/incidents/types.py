"""The incident engine's vocabulary: what it reads from zones/ and the events it emits.

The zone protocols are structural so that zones/ stays independent of edge/. Events are
frozen values; `StreamStart` maps stream seconds to wall-clock UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from models.types import BoolArray, FloatArray, Frame

Box = tuple[float, float, float, float]


# --- what the engine needs from zones/ ---


class ShopLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class ZoneLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def shop(self) -> ShopLike | None: ...
    @property
    def dwell_s(self) -> float: ...
    @property
    def clear_s(self) -> float: ...
    @property
    def update_every_s(self) -> float | None: ...
    @property
    def cooldown_s(self) -> float | None: ...


class ZoneFileLike(Protocol):
    @property
    def camera_id(self) -> str: ...
    @property
    def zones(self) -> Sequence[ZoneLike]: ...


class ZoneCheckLike(Protocol):
    @property
    def zone(self) -> ZoneLike: ...
    @property
    def active(self) -> bool: ...
    @property
    def mask(self) -> BoolArray: ...
    @property
    def overlap(self) -> FloatArray: ...


# --- events ---


class IncidentEventKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    CLEARED = "cleared"


class ClearReason(StrEnum):
    ABSENT = "absent"  # no qualifying object for clear_s
    SCHEDULE = "schedule"  # the zone's rule stopped applying
    ZONE_REMOVED = "zone_removed"  # a resumed incident's zone is no longer in the zone file


@dataclass(frozen=True)
class IncidentObject:
    """One object behind an incident: pixels and normalised 0..1 box of the latest view."""

    label: str
    confidence: float
    xyxy: Box
    bbox: Box
    tracker_id: int | None


@dataclass(frozen=True, eq=False)
class IncidentEvent:
    """A lifecycle event. `t`/`first_seen_t` are stream seconds; `utc` is the wall time of `t`.

    `first_seen_t` never lies before the start of the stream (0, or the engine's first frame
    if that was earlier): an incident resumed from the store that was first seen before this
    stream began reports the stream's start. Its true age is `dwell_s`, carried across
    restarts by wall clock, and `first_seen_utc`.
    """

    event: IncidentEventKind
    incident_id: str
    seq: int
    camera_id: str
    zone_id: str
    shop_id: str | None
    shop_name: str | None
    t: float
    first_seen_t: float
    utc: datetime
    objects: tuple[IncidentObject, ...]  # one per physical object: duplicate boxes dropped
    dwell_s: float  # seconds since the objects were first seen, restarts included
    reason: ClearReason | None = None
    evidence_frame: Frame | None = None  # highest-confidence view; only on opened/updated
    evidence_t: float | None = None

    @property
    def primary(self) -> IncidentObject | None:
        """The most confident object, for consumers that take one label and box."""
        return max(self.objects, key=lambda o: o.confidence, default=None)

    @property
    def first_seen_utc(self) -> datetime:
        """Wall time at which the incident's objects were first seen, restarts included."""
        return self.utc - timedelta(seconds=max(0.0, self.dwell_s))


@dataclass(frozen=True)
class StreamStart:
    """Maps stream seconds to UTC: the wall time at which stream time was 0."""

    utc_at_zero: datetime = datetime(1970, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        if self.utc_at_zero.tzinfo is None:
            raise ValueError("StreamStart.utc_at_zero: expected an aware datetime")

    def __call__(self, ts: float) -> datetime:
        return (self.utc_at_zero + timedelta(seconds=ts)).astimezone(UTC)
