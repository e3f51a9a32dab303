"""Payload models of the MQTT contract: strict, closed (extra=forbid), versioned by `schema`.

Every JSON payload carries a `schema` string such as "curbwatch.incident/2". A consumer that
meets a schema it does not know rejects the message instead of guessing (the ingest
dead-letters it), so a breaking change is a new number, never a silent reinterpretation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from uplink.clock import format_utc
from uplink.files import jpeg_size

INCIDENT_SCHEMA: Final = "curbwatch.incident/3"
INCIDENT_SCHEMA_V2: Final = "curbwatch.incident/2"  # still accepted by the ingest
INCIDENT_SCHEMA_V1: Final = "curbwatch.incident/1"  # still accepted by the ingest
CONFIG_SCHEMA: Final = "curbwatch.config/1"
HEALTH_SCHEMA: Final = "curbwatch.health/4"
HEALTH_SCHEMA_V3: Final = "curbwatch.health/3"  # still accepted by the ingest (docs/mqtt.md)
HEALTH_SCHEMA_V2: Final = "curbwatch.health/2"  # still accepted by the ingest
HEALTH_SCHEMA_V1: Final = "curbwatch.health/1"  # still accepted by the ingest
CAMERA_STATUS_SCHEMA: Final = "curbwatch.camera-status/2"
CAMERA_STATUS_SCHEMA_V1: Final = "curbwatch.camera-status/1"  # still accepted by the ingest
ACK_SCHEMA: Final = "curbwatch.ack/1"
ZONES_REPORT_SCHEMA: Final = "curbwatch.zones/1"
MAX_ACKED_EVENTS = 1000  # per ack message

# A JPEG of a 1080p frame at quality ~85 is 200-400 KiB; 512 KiB leaves room and keeps one
# incident message (base64: x4/3) under the ingest's default 1 MiB payload limit.
MAX_EVIDENCE_BYTES = 512 * 1024
MAX_ZONE_DOCUMENT_CHARS = 256 * 1024
MAX_HEALTH_PROBLEMS = 10  # config problems carried in health; the edge log has all of them
MAX_PROBLEM_CHARS = 500
MAX_HEALTH_CAMERAS = 64

# Ids become MQTT topic levels and file names: no '/', '+', '#', no leading dot.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


def _require_utc(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError("timestamps must be UTC (suffix Z or +00:00)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_require_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
    Field(json_schema_extra={"format": "date-time"}),
]


def _check_box(value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = value
    if x1 > x2 or y1 > y2:
        raise ValueError(f"bbox must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2, got {list(value)}")
    return value


NormalisedBox = Annotated[
    tuple[Unit, Unit, Unit, Unit],
    AfterValidator(_check_box),
    Field(description="[x1, y1, x2, y2] as fractions 0..1 of the frame width and height"),
]


def _schema_field_required(schema: dict[str, Any]) -> None:
    # Python callers get `schema` filled in; on the wire it must be present, so say so.
    if "schema" in schema.get("properties", {}):
        schema["required"] = ["schema", *[name for name in schema.get("required", []) if name != "schema"]]


class WireModel(BaseModel):
    """Strict: no type coercion, no unknown keys, immutable once parsed."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,  # JSON has no Infinity/NaN; Python's parser accepts them anyway
        json_schema_extra=_schema_field_required,
    )


class IncidentEventKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    CLEARED = "cleared"


class Shop(WireModel):
    id: Identifier = Field(description="the shop that receives the reminder")
    name: Annotated[str, StringConstraints(max_length=200)] = Field(description="display name")


class DetectedObject(WireModel):
    label: Label
    confidence: Confidence
    bbox: NormalisedBox


MAX_EVIDENCE_SIDE_PX = 8192


def jpeg_problem(data: bytes) -> str | None:
    """Why `data` is not a JPEG a browser may be given, or None: the magic, then the frame size."""
    try:
        width, height = jpeg_size(data)
    except ValueError as exc:
        return str(exc)
    if not (1 <= width <= MAX_EVIDENCE_SIDE_PX and 1 <= height <= MAX_EVIDENCE_SIDE_PX):
        return f"frame of {width}x{height} px, limit {MAX_EVIDENCE_SIDE_PX} per side"
    return None


class Evidence(WireModel):
    """The annotated JPEG, embedded so it travels atomically with its event (docs/mqtt.md)."""

    content_type: Literal["image/jpeg"] = "image/jpeg"
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    data: Annotated[
        str,
        StringConstraints(max_length=(MAX_EVIDENCE_BYTES + 2) // 3 * 4),
        Field(description="base64 (RFC 4648, padded) of the JPEG bytes"),
    ]

    @model_validator(mode="after")
    def _data_matches_digest(self) -> Evidence:
        jpeg = self.jpeg()
        digest = hashlib.sha256(jpeg).hexdigest()
        if digest != self.sha256:
            raise ValueError(f"evidence sha256 mismatch: declared {self.sha256}, data hashes to {digest}")
        problem = jpeg_problem(jpeg)
        if problem:
            raise ValueError(f"evidence is not a usable JPEG: {problem}")
        return self

    def jpeg(self) -> bytes:
        try:
            return base64.b64decode(self.data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"evidence data is not valid base64: {exc}") from exc

    @classmethod
    def from_jpeg(cls, jpeg: bytes) -> Evidence:
        return cls(
            sha256=hashlib.sha256(jpeg).hexdigest(),
            data=base64.b64encode(jpeg).decode("ascii"),
        )


class IncidentMessageV1(WireModel):
    """One lifecycle event of one incident; (incident_id, seq) is the idempotency key."""

    schema_: Literal["curbwatch.incident/1"] = Field(default=INCIDENT_SCHEMA_V1, alias="schema")
    incident_id: UUID
    seq: int = Field(ge=0, le=2**63 - 1, description="per incident, +1 for each event; 0 is the opened event")
    event: IncidentEventKind
    node_id: Identifier
    camera_id: Identifier
    zone_id: Identifier
    shop: Shop
    label: Label = Field(description="the class that made the incident, e.g. 'chair'")
    confidence: Confidence
    bbox: NormalisedBox
    objects: list[DetectedObject] = Field(default_factory=list, max_length=100)
    first_seen_at: UtcDatetime = Field(description="first frame where the object was in the zone")
    at: UtcDatetime = Field(description="when this event happened on the edge")
    dwell_s: float | None = Field(None, ge=0.0, description="seconds present in the zone at `at`")
    evidence: Evidence | None = None

    model_config = ConfigDict(populate_by_name=True, title="IncidentMessage")


class IncidentMessageV2(IncidentMessageV1):
    """One lifecycle event of one incident; (incident_id, seq) is the idempotency key.

    /2 is /1 plus `before_now`: the zone as the scene model learned it clean beside the same
    area in the evidence frame, people blurred in both, when the edge runs a scene model.
    """

    schema_: Literal["curbwatch.incident/2"] = Field(default=INCIDENT_SCHEMA_V2, alias="schema")  # type: ignore[assignment]
    before_now: Evidence | None = Field(
        default=None, description="JPEG: the zone before (clean background) | the same area now"
    )

    model_config = ConfigDict(populate_by_name=True, title="IncidentMessage2")


Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class IncidentMessage(IncidentMessageV2):
    """One lifecycle event of one incident; (incident_id, seq) is the idempotency key.

    /3 is /2 plus which zone document the camera ran when it raised the event, so the review
    server draws the incident with the zones it was raised under, not today's, and
    `evidence_objects`: the objects as numbered in the evidence picture.
    """

    schema_: Literal["curbwatch.incident/3"] = Field(default=INCIDENT_SCHEMA, alias="schema")  # type: ignore[assignment]
    zones_sha256: Sha256 | None = Field(
        default=None, description="sha256 of the zone document text (UTF-8) the camera ran"
    )
    zones_config_version: int | None = Field(
        default=None, ge=1, description="the ConfigMessage.version it came with; absent: a local zone file"
    )
    # The edge numbers the boxes it burns into `evidence` (tags 1, 2, ...); the review page
    # names them in the inspector's language and draws its boxes over exactly these.
    evidence_objects: list[DetectedObject] | None = Field(
        default=None,
        max_length=100,
        description="the boxes drawn in `evidence`, in the order of their number tags (tag 1 first)",
    )

    model_config = ConfigDict(populate_by_name=True, title="IncidentMessage3")

    @model_validator(mode="after")
    def _evidence_objects_need_evidence(self) -> IncidentMessage:
        if self.evidence_objects is not None and self.evidence is None:
            raise ValueError("evidence_objects describe the evidence picture: they need `evidence`")
        return self


class ConfigMessage(WireModel):
    """Retained on {prefix}/{node}/config by the review server; the edge applies it live."""

    schema_: Literal["curbwatch.config/1"] = Field(default=CONFIG_SCHEMA, alias="schema")
    node_id: Identifier
    version: int = Field(ge=1, description="increases with every change; the edge reports it in health")
    issued_at: UtcDatetime
    cameras: dict[Identifier, Annotated[str, StringConstraints(max_length=MAX_ZONE_DOCUMENT_CHARS)]] = Field(
        description="camera_id -> zone document text (YAML or JSON), parsed by the edge's zones loader"
    )

    model_config = ConfigDict(populate_by_name=True)


class NodeState(StrEnum):
    """Plain-text payload of the retained {prefix}/{node}/status topic (and of the Last Will)."""

    ONLINE = "online"
    OFFLINE = "offline"


class CameraState(StrEnum):
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


class NodeHealthV1(WireModel):
    """Retained on {prefix}/{node}/health every health interval while the node is online."""

    # curbwatch.health/1, from nodes older than per-camera and config reporting: the ingest
    # still reads it; nothing sends it. Title and description keep health-1.json unchanged.

    schema_: Literal["curbwatch.health/1"] = Field(default=HEALTH_SCHEMA_V1, alias="schema")
    node_id: Identifier
    at: UtcDatetime
    uptime_s: float = Field(ge=0.0)
    outbox_backlog: int = Field(ge=0, description="events waiting for a PUBACK")
    config_version: int | None = Field(default=None, ge=1, description="the applied ConfigMessage.version")
    software_version: Annotated[str, StringConstraints(max_length=64)] | None = None

    model_config = ConfigDict(populate_by_name=True, title="NodeHealth")


class SceneView(StrEnum):
    """What the edge's scene model makes of a camera's view (a tamper alarm for the centre)."""

    LEARNING = "learning"  # learning the clean background (at start, after a re-learn)
    WATCHING = "watching"
    VIEW_CHANGED = "view_changed"  # most of the view changed at once: moved or re-aimed; re-learning
    OBSTRUCTED = "obstructed"  # the picture lost its detail: lens covered, blocked or blacked out


class CameraHealthV2(WireModel):
    """One camera as the node sees it when the health message is built."""

    # The camera block of curbwatch.health/2, which the ingest still reads.

    camera_id: Identifier
    state: CameraState
    last_frame_at: UtcDatetime | None = Field(
        default=None, description="the last picture the capture decoded"
    )
    fps_analysed: float = Field(ge=0.0, description="frames through the detector per second, recently")
    incidents_open: int = Field(ge=0, description="incidents open on this camera now")

    model_config = ConfigDict(title="CameraHealth")


class CameraHealthV3(CameraHealthV2):
    """One camera as the node sees it when the health message is built (/3: plus the scene model)."""

    view: SceneView | None = Field(default=None, description="the scene model's view; absent: not run")
    static_regions: int | None = Field(default=None, ge=0, description="static regions standing now")
    relearns: int | None = Field(default=None, ge=0, description="re-learns since the node started")
    scene_ms: float | None = Field(default=None, ge=0.0, description="scene model time per picture")

    model_config = ConfigDict(title="CameraHealth3")


class CameraHealth(CameraHealthV3):
    """One camera as the node sees it when the health message is built (/4: plus its capture CPU)."""

    decode_share: float | None = Field(
        default=None,
        ge=0.0,
        description="CPU seconds per wall second its capture thread spent demuxing, decoding and "
        "converting since the previous health message (1.0: a whole core); absent: no earlier reading",
    )

    model_config = ConfigDict(title="CameraHealth4")


Problem = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_PROBLEM_CHARS),
    Field(description="`source:line: key: message`, as the zones loader prints it"),
]


class ConfigHealth(WireModel):
    """The zone config the node runs, and the newest one it refused (if newer than that)."""

    applied_version: int | None = Field(
        default=None,
        ge=1,
        description="the applied ConfigMessage.version; absent: the node's local zone files",
    )
    rejected_version: int | None = Field(
        default=None,
        ge=1,
        description="the refused ConfigMessage.version; absent with rejected_at: unreadable",
    )
    rejected_at: UtcDatetime | None = Field(
        default=None, description="when the node refused it; marks a rejection"
    )
    problems: list[Problem] = Field(
        default_factory=list, max_length=MAX_HEALTH_PROBLEMS, description="why, first problems first"
    )

    @model_validator(mode="after")
    def _rejection_is_complete(self) -> ConfigHealth:
        if self.rejected_at is None and (self.rejected_version is not None or self.problems):
            raise ValueError("rejected_version and problems need rejected_at")
        if self.rejected_at is not None and not self.problems:
            raise ValueError("a rejection (rejected_at) needs at least one problem")
        return self


class NodeHealthV2(WireModel):
    """Retained on {prefix}/{node}/health every health interval while the node is online.

    /2 is /1 plus the optional `cameras` and `config` blocks; every /1 field keeps its meaning.
    """

    schema_: Literal["curbwatch.health/2"] = Field(default=HEALTH_SCHEMA_V2, alias="schema")
    node_id: Identifier
    at: UtcDatetime
    uptime_s: float = Field(ge=0.0)
    outbox_backlog: int = Field(ge=0, description="events waiting for a PUBACK")
    config_version: int | None = Field(default=None, ge=1, description="the applied ConfigMessage.version")
    software_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    cameras: list[CameraHealthV2] | None = Field(default=None, max_length=MAX_HEALTH_CAMERAS)
    config: ConfigHealth | None = None

    model_config = ConfigDict(populate_by_name=True, title="NodeHealth")

    @model_validator(mode="after")
    def _consistent(self) -> NodeHealthV2:
        ids = [camera.camera_id for camera in self.cameras or ()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"cameras: camera_id must be unique, got {ids}")
        if self.config is not None and self.config.applied_version != self.config_version:
            raise ValueError(
                f"config.applied_version ({self.config.applied_version}) must equal"
                f" config_version ({self.config_version})"
            )
        return self


class NodeHealthV3(NodeHealthV2):
    """Retained on {prefix}/{node}/health every health interval while the node is online.

    /3 is /2 with the scene model's view and counts in each camera block, and the events the
    centre has not acknowledged yet (end-to-end acknowledgement, curbwatch.ack/1).
    """

    schema_: Literal["curbwatch.health/3"] = Field(default=HEALTH_SCHEMA_V3, alias="schema")  # type: ignore[assignment]
    outbox_unacked: int | None = Field(
        default=None, ge=0, description="events the centre has not acknowledged storing (sent or not)"
    )
    oldest_unacked_s: float | None = Field(
        default=None, ge=0.0, description="age of the oldest of them, seconds"
    )
    cameras: list[CameraHealthV3] | None = Field(default=None, max_length=MAX_HEALTH_CAMERAS)  # type: ignore[assignment]

    model_config = ConfigDict(populate_by_name=True, title="NodeHealth3")


class RuntimeHealth(WireModel):
    """What the box runs: its threads, and the detector's recent time per frame."""

    detector_threads: int = Field(ge=1, description="inference threads of the detector (node.yaml)")
    detector_workers: int = Field(
        ge=1, description="threads taking frames to the detector, each also running the cameras' logic"
    )
    capture_threads: int = Field(ge=0, description="capture threads running, one per camera")
    detect_ms_mean: float | None = Field(
        default=None, ge=0.0, description="detector time per frame, mean of the last frames (at most 256)"
    )
    detect_ms_p95: float | None = Field(default=None, ge=0.0, description="95th percentile of the same")


class NodeHealth(NodeHealthV3):
    """Retained on {prefix}/{node}/health every health interval while the node is online.

    /4 is /3 plus `runtime` (the box's threads and the detector's time per frame) and each
    camera's `decode_share` (the capture CPU it costs); every /3 field keeps its meaning.
    """

    schema_: Literal["curbwatch.health/4"] = Field(default=HEALTH_SCHEMA, alias="schema")  # type: ignore[assignment]
    runtime: RuntimeHealth | None = None
    cameras: list[CameraHealth] | None = Field(default=None, max_length=MAX_HEALTH_CAMERAS)  # type: ignore[assignment]

    model_config = ConfigDict(populate_by_name=True, title="NodeHealth4")


class CameraStatusV1(WireModel):
    """Retained on {prefix}/{node}/{camera}/status whenever the capture state changes."""

    schema_: Literal["curbwatch.camera-status/1"] = Field(default=CAMERA_STATUS_SCHEMA_V1, alias="schema")
    node_id: Identifier
    camera_id: Identifier
    state: CameraState
    at: UtcDatetime
    last_frame_at: UtcDatetime | None = None

    model_config = ConfigDict(populate_by_name=True, title="CameraStatus")


class CameraStatus(CameraStatusV1):
    """Retained on {prefix}/{node}/{camera}/status when the capture state or the scene view changes.

    /2 is /1 plus `view`: `view_changed` and `obstructed` are the tamper alarms.
    """

    schema_: Literal["curbwatch.camera-status/2"] = Field(default=CAMERA_STATUS_SCHEMA, alias="schema")  # type: ignore[assignment]
    view: SceneView | None = Field(default=None, description="the scene model's view; absent: not run")

    model_config = ConfigDict(populate_by_name=True, title="CameraStatus2")


class ZoneSource(StrEnum):
    FILE = "file"  # the camera's `zones` file in node.yaml
    CONFIG = "config"  # a ConfigMessage from the review server


MAX_ZONE_PATH_CHARS = 1024


class ZonesReport(WireModel):
    """Retained on {prefix}/{node}/{camera}/zones whenever the zones a camera runs change.

    The review server learns what the edge enforces (a local file it never saw, or the version
    it published), so its zone editor starts from that and never silently drops it.
    """

    schema_: Literal["curbwatch.zones/1"] = Field(default=ZONES_REPORT_SCHEMA, alias="schema")
    node_id: Identifier
    camera_id: Identifier
    at: UtcDatetime = Field(description="when the camera started running this document")
    sha256: Sha256 = Field(description="sha256 of the document text (UTF-8), as incidents name it")
    source: ZoneSource
    path: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ZONE_PATH_CHARS)] | None = Field(
        default=None, description="the zone file on the edge box (source: file)"
    )
    config_version: int | None = Field(
        default=None, ge=1, description="the applied ConfigMessage.version (source: config)"
    )
    document: Annotated[str, StringConstraints(max_length=MAX_ZONE_DOCUMENT_CHARS)] | None = Field(
        default=None,
        description="the zone document text; absent when longer than a config message may carry",
    )

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> ZonesReport:
        if self.source is ZoneSource.FILE and self.path is None:
            raise ValueError("source 'file' needs `path`")
        if self.source is ZoneSource.CONFIG and self.config_version is None:
            raise ValueError("source 'config' needs `config_version`")
        if self.document is not None:
            digest = hashlib.sha256(self.document.encode("utf-8")).hexdigest()
            if digest != self.sha256:
                raise ValueError(f"sha256 mismatch: declared {self.sha256}, document hashes to {digest}")
        return self


def to_json(message: WireModel) -> bytes:
    """The one way models go on the wire: by alias (`schema`), compact, UTF-8."""
    return message.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


class AckedEvent(WireModel):
    incident_id: UUID
    seq: int = Field(ge=0, le=2**63 - 1)


class StoredAck(WireModel):
    """On {prefix}/{node}/ack from the centre: these events of the node are committed to its
    database. Only then does the edge let their outbox rows go (PUBACK is only the broker)."""

    schema_: Literal["curbwatch.ack/1"] = Field(default=ACK_SCHEMA, alias="schema")
    node_id: Identifier
    events: list[AckedEvent] = Field(min_length=1, max_length=MAX_ACKED_EVENTS)

    model_config = ConfigDict(populate_by_name=True)
