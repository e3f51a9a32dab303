"""The zone file: one frozen pydantic tree, every field described and bounded.

Scalars are strict (a quoted "0.5" is not a number, 1 is not `true`); lists
are read as tuples so a loaded ZoneFile cannot change. Coordinates are
fractions 0..1 of the frame, so a zone survives a resolution change.

Validation context (`model_validate(data, context=...)`):
  known_classes: class names of a custom detector, replacing COCO_CLASSES;
  defer_cross_checks: the loader runs the cross-zone rules itself to report
      each at its own line (direct construction runs them here).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Collection
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.classes import COCO_CLASSES, DEFAULT_GOODS_CLASSES, SCENE_CLASSES
from zones.checks import class_problem, cross_zone_findings, polygon_problem
from zones.yaml_source import Severity, format_key_path

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")


def _check_identifier(value: str) -> str:
    # Ids end up in MQTT topics and file names: no '/', '+', '#' or spaces.
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"'{value}' is not an id: use 1-64 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _check_clock(value: str) -> str:
    if not _CLOCK.fullmatch(value):
        raise ValueError(f"'{value}' is not a time: use HH:MM from 00:00 to 23:59 (24:00 as an end)")
    return value


Identifier = Annotated[str, Strict(), AfterValidator(_check_identifier)]
Text = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=200)]
ClockTime = Annotated[str, Strict(), AfterValidator(_check_clock)]
Seconds = Annotated[float, Strict()]
Fraction = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]


def _check_coordinate(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"coordinate {value} is outside 0..1: zone points are fractions of the frame width and height"
        )
    return value


def _check_class_name(name: str, info: ValidationInfo) -> str:
    # The edge's scene model adds its classes beside any detector's (edge.scene).
    known = set((info.context or {}).get("known_classes") or COCO_CLASSES) | set(SCENE_CLASSES)
    problem = class_problem(name, known)
    if problem:
        raise ValueError(problem)
    return name


Coordinate = Annotated[float, Strict(), AfterValidator(_check_coordinate)]
Point = tuple[Coordinate, Coordinate]
ClassName = Annotated[str, Strict(), AfterValidator(_check_class_name)]


MAX_ZONES = 256  # per camera: a frontage is a handful; this bounds validation time on hostile input
MAX_POLYGON_POINTS = 256


def clock_minutes(clock: str) -> int:
    """Minutes since midnight: "08:30" -> 510; "24:00" -> 1440 (the end of the day)."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneKind(enum.StrEnum):
    MONITORED = "monitored"  # goods here become incidents for the zone's shop
    EXEMPT = "exempt"  # e.g. a licensed cafe area: goods here never count


class Weekday(enum.StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday 0 .. Sunday 6, as `date.weekday()` counts."""
        return list(Weekday).index(self)


class Shop(StrictModel):
    id: Identifier = Field(description="Shop id in the review server; who gets the reminder.")
    name: Text = Field(description="Shop name as shown to inspectors (any script).")
    contact_name: Text | None = Field(default=None, description="Person to remind.")
    phone: Annotated[str, Strict(), StringConstraints(pattern=r"^\+?[0-9 ()-]{3,32}$")] | None = Field(
        default=None, description="Phone for SMS reminders."
    )
    address: Text | None = Field(default=None, description="Street address, for inspectors.")
    licence_no: Text | None = Field(default=None, description="Business licence number (营业执照).")


class TimeWindow(StrictModel):
    start: ClockTime = Field(description='Local wall-clock start "HH:MM".')
    end: ClockTime = Field(
        description='Local wall-clock end "HH:MM", exclusive; "24:00" is midnight; '
        "an end before the start runs past midnight into the next day."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == "24:00":
            raise ValueError('start "24:00" is not a time of day: use "00:00"')
        if self.start == self.end:
            raise ValueError(f'start and end are both "{self.start}": for all day use "00:00" to "24:00"')
        return self

    @property
    def start_min(self) -> int:
        return clock_minutes(self.start)

    @property
    def end_min(self) -> int:
        return clock_minutes(self.end)

    @property
    def overnight(self) -> bool:
        return self.end_min < self.start_min


class WeeklyWindow(TimeWindow):
    days: tuple[Weekday, ...] = Field(
        min_length=1, description="Days the window starts on (an overnight window ends the day after)."
    )


class DateException(StrictModel):
    date: dt.date = Field(description="Local date (YYYY-MM-DD): a market day, holiday or closure.")
    active: Annotated[bool, Strict()] = Field(
        description="false: the rule is off all day; true: on during `windows` (all day if none)."
    )
    windows: tuple[TimeWindow, ...] = Field(
        default=(), description="Windows replacing the weekly ones on this date (only with active: true)."
    )
    reason: Text | None = Field(default=None, description="Why, for the people reading the file.")

    @model_validator(mode="after")
    def _windows_need_active(self) -> DateException:
        if self.windows and not self.active:
            raise ValueError("windows are only allowed with active: true (active: false is off all day)")
        return self


class Schedule(StrictModel):
    """When a zone's rule applies. A zone without a schedule always applies."""

    weekly: tuple[WeeklyWindow, ...] = Field(default=(), description="Recurring windows by weekday.")
    exceptions: tuple[DateException, ...] = Field(
        default=(), description="Dates whose windows replace the weekly ones."
    )

    @model_validator(mode="after")
    def _has_windows(self) -> Schedule:
        if not self.weekly and not self.exceptions:
            raise ValueError("schedule has no weekly windows or exceptions: remove it to apply always")
        dates = [exception.date for exception in self.exceptions]
        repeated = sorted({d for d in dates if dates.count(d) > 1})
        if repeated:
            raise ValueError(f"exceptions list a date more than once: {', '.join(map(str, repeated))}")
        return self


class Fixture(StrictModel):
    """Something that belongs in the zone (a city bench, a bike rack): never reported."""

    class_name: ClassName = Field(alias="class", description="Detector class of the fixture.")
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] = Field(
        description="Where it stands: normalised x1, y1, x2, y2."
    )
    tolerance: float = Field(
        default=0.5, gt=0.0, le=1.0, strict=True, description="IoU with `box` at which a detection is it."
    )
    name: Text | None = Field(default=None, description="What it is, for people.")

    @field_validator("box")
    @classmethod
    def _ordered(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if not (box[0] < box[2] and box[1] < box[3]):
            raise ValueError(f"box must be x1, y1, x2, y2 with x1 < x2 and y1 < y2, got {list(box)}")
        return box


class Zone(StrictModel):
    id: Identifier = Field(description="Unique within the camera; used in incidents and topics.")
    name: Text | None = Field(default=None, description="Human name, any script.")
    kind: ZoneKind = Field(description="monitored: goods here are reported; exempt: never reported.")
    polygon: tuple[Point, ...] = Field(
        max_length=MAX_POLYGON_POINTS, description="Outline as normalised [x, y] points in order."
    )
    shop: Shop | None = Field(default=None, description="Who gets the reminder; required when monitored.")
    classes: frozenset[ClassName] = Field(
        default=DEFAULT_GOODS_CLASSES,
        min_length=1,
        description="Detector classes that count as goods here (exempt: the classes exempted). "
        "`static object` is anything new that stays (the scene model); `signboard` one with text.",
    )
    min_overlap: float = Field(
        default=0.5, gt=0.0, le=1.0, strict=True, description="Fraction of a box's footprint inside."
    )
    min_confidence: float = Field(default=0.35, ge=0.0, le=1.0, strict=True, description="Lowest score.")
    min_area: Fraction = Field(default=0.0, description="Smallest box, as a fraction of the frame area.")
    max_area: Fraction = Field(default=1.0, description="Largest box, as a fraction of the frame area.")
    dwell_s: Seconds = Field(default=60.0, ge=1.0, le=86_400.0, description="Present this long -> opened.")
    clear_s: Seconds = Field(default=30.0, ge=1.0, le=3_600.0, description="Absent this long -> cleared.")
    update_every_s: Seconds = Field(
        default=300.0, ge=10.0, le=86_400.0, description="Cadence of `updated` events while open."
    )
    cooldown_s: Seconds = Field(
        default=120.0, ge=0.0, le=86_400.0, description="After a clear, the same object cannot reopen."
    )
    schedule: Schedule | None = Field(default=None, description="When the rule applies; absent: always.")
    fixtures: tuple[Fixture, ...] = Field(default=(), description="Objects that belong here; ignored.")

    @field_validator("polygon")
    @classmethod
    def _usable_polygon(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if len(points) > 3 and points[0] == points[-1]:
            points = points[:-1]  # a closed ring repeats its first point; keep one
        problem = polygon_problem(points)
        if problem:
            raise ValueError(problem)
        return points

    @model_validator(mode="after")
    def _rules(self) -> Zone:
        if self.kind is ZoneKind.MONITORED and self.shop is None:
            raise ValueError(f"monitored zone '{self.id}' needs `shop`: who gets the reminder")
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area {self.min_area} must be below max_area {self.max_area}")
        return self


class ZoneFile(StrictModel):
    schema_version: Literal[1] = Field(default=1, description="Zone file format version.")
    camera_id: Identifier = Field(description="The camera these zones are drawn on.")
    timezone: Annotated[str, Strict()] = Field(
        default="Asia/Shanghai", description="IANA time zone that schedules are written in."
    )
    zones: tuple[Zone, ...] = Field(
        max_length=MAX_ZONES, description="Monitored and exempt areas of this camera."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone '{name}': use an IANA name like Asia/Shanghai") from err
        return name

    @model_validator(mode="after")
    def _cross_zone_rules(self, info: ValidationInfo) -> ZoneFile:
        if (info.context or {}).get("defer_cross_checks"):
            return self
        errors = [f for f in cross_zone_findings(self) if f.severity is Severity.ERROR]
        if errors:
            raise ValueError("; ".join(f"{format_key_path(f.path)}: {f.message}" for f in errors))
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def monitored(self) -> tuple[Zone, ...]:
        return tuple(zone for zone in self.zones if zone.kind is ZoneKind.MONITORED)

    @property
    def exempt(self) -> tuple[Zone, ...]:
        return tuple(zone for zone in self.zones if zone.kind is ZoneKind.EXEMPT)


def validation_context(known_classes: Collection[str] | None, defer_cross_checks: bool) -> dict[str, Any]:
    return {
        "known_classes": frozenset(known_classes) if known_classes is not None else None,
        "defer_cross_checks": defer_cross_checks,
    }
