"""node.yaml: one strict, frozen pydantic tree for an edge node, errors at `file:line: key`.

Relative paths in the file (zones, outbox, model, TLS files) are relative to the
file's own directory, so a node directory can be moved as a whole. A password
is better kept in `password_file` (readable by the service user only) than in
node.yaml; it is read when the file loads and is a SecretStr from then on.

Cross-field rules are named functions returning Findings, so each problem is
reported at the line of the key it is about (the zones loader does the same).
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from edge.scene.config import SceneSettings
from models.backend import Backend
from uplink.settings import MqttSettings, TlsSettings
from uplink.topics import DEFAULT_PREFIX
from zones.loader import check_zone_file
from zones.yaml_source import (
    ConfigFileError,
    Finding,
    Problem,
    Severity,
    SourceDocument,
    format_key_path,
    load_with_positions,
    problem_from_finding,
    problems_from_validation_error,
)

Identifier = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
_URL = re.compile(r"^(rtsps?|https?)://[^\s]+$|^file://[^\s]+$|^usb:[0-9]{1,2}$|^/dev/video[0-9]{1,2}$")


def _resolve(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


ConfigPath = Annotated[Path, AfterValidator(_resolve)]


def _check_url(url: str) -> str:
    if not _URL.match(url):
        raise ValueError(
            "url must be rtsp://, rtsps://, http(s)://, file:///path/to/video, usb:N or /dev/videoN"
        )
    return url


CameraUrl = Annotated[str, Strict(), AfterValidator(_check_url)]


def _check_main_stream_url(url: str) -> str:
    if not _URL.match(url) or url.startswith(("usb:", "/dev/")):
        # A USB device cannot be opened a second time beside the analysed stream.
        raise ValueError("main_stream_url must be rtsp://, rtsps://, http(s):// or file:///path/to/video")
    return url


MainStreamUrl = Annotated[str, Strict(), AfterValidator(_check_main_stream_url)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSection(StrictModel):
    ca_file: ConfigPath = Field(description="CA bundle that signed the broker's certificate.")
    cert_file: ConfigPath | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: ConfigPath | None = Field(default=None, description="Private key of cert_file.")


class MqttSection(StrictModel):
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        default="127.0.0.1", description="Broker host name or address."
    )
    port: int = Field(
        strict=True, default=1883, ge=1, le=65535, description="1883 plain, 8883 TLS by convention."
    )
    tls: TlsSection | None = Field(default=None, description="TLS to the broker; absent: plain TCP.")
    username: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="Broker user; the broker ACL lets it publish under its node only."
    )
    password: SecretStr | None = Field(default=None, description="Prefer password_file; never logged.")
    password_file: ConfigPath | None = Field(
        default=None, description="File whose first line is the password (mode 0600)."
    )
    prefix: Annotated[str, StringConstraints(pattern=r"^[^/+#\s]+(/[^/+#\s]+)*$")] = Field(
        default=DEFAULT_PREFIX, description="Topic prefix; carries the contract version."
    )
    keepalive_s: int = Field(
        strict=True, default=30, ge=5, le=3600, description="The broker fires the Last Will after 1.5x."
    )

    reconnect_min_s: int = Field(strict=True, default=1, ge=1, le=60, description="First reconnect delay.")
    reconnect_max_s: int = Field(
        strict=True, default=30, ge=1, le=3600, description="Reconnect delay ceiling."
    )

    def read_password(self) -> SecretStr | None:
        if self.password_file is None:
            return self.password
        try:
            first_line = self.password_file.read_text(encoding="utf-8").splitlines()[:1]
        except OSError as err:
            raise ValueError(f"cannot read password_file: {err.strerror}") from err
        return SecretStr(first_line[0] if first_line else "")

    def settings(self, node_id: str) -> MqttSettings:
        """The uplink's connection settings; the node id is the client id (ACLs key on it)."""
        tls = None
        if self.tls is not None:
            tls = TlsSettings(
                ca_file=self.tls.ca_file, cert_file=self.tls.cert_file, key_file=self.tls.key_file
            )
        return MqttSettings(
            host=self.host,
            port=self.port,
            client_id=node_id,
            prefix=self.prefix,
            username=self.username,
            password=self.read_password(),
            tls=tls,
            keepalive_s=self.keepalive_s,
            reconnect_min_s=self.reconnect_min_s,
            reconnect_max_s=self.reconnect_max_s,
        )


class OutboxSection(StrictModel):
    path: ConfigPath = Field(
        default=Path("/var/lib/curbwatch/edge.sqlite"),
        description="SQLite file for the outbox and incident state (its directory must be writable).",
    )
    max_bytes: int = Field(
        strict=True,
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        le=64 * 1024**3,
        description="Quota of the database.",
    )
    retention_days: float = Field(
        strict=True, default=7.0, ge=0.0, le=365.0, description="Acknowledged events kept this long."
    )
    ack_timeout_s: float = Field(
        strict=True,
        default=120.0,
        ge=0.0,
        le=86_400.0,
        description="An event the centre has not acknowledged storing this long after its PUBACK is "
        "sent again; 0: the PUBACK is enough (a review server older than curbwatch.ack/1).",
    )


class DetectorSection(StrictModel):
    model: ConfigPath | None = Field(
        default=None, description="Model file (.onnx) or detector config file; null: the bundled NanoDet."
    )
    threads: int = Field(strict=True, default=2, ge=1, le=64, description="Inference threads per worker.")
    workers: int = Field(
        strict=True,
        default=1,
        ge=1,
        le=16,
        description="Frames detected at once, each worker with its own copy of the model and "
        "`threads` inference threads: on a small CPU two workers of one thread analyse more "
        "frames per second than one of two. Keep workers x threads within the box's cores.",
    )
    conf: float = Field(
        strict=True, default=0.25, ge=0.01, le=1.0, description="Lowest detection score kept."
    )
    backend: Backend = Field(
        default="auto",
        validate_default=True,  # the name, as a user writes it, is what the reference shows
        description="Inference engine of the detector, face and text models: auto (OpenVINO where "
        "installed and usable, else ONNX Runtime), openvino or onnxruntime; a name or "
        "{type, performance_hint, precision, cache_dir}. Replaces a detector config file's own.",
    )


class KeyframesOnly(enum.StrEnum):
    AUTO = "auto"  # keyframes only when decoding cannot keep up with the sample interval
    ON = "on"
    OFF = "off"


class CameraSection(StrictModel):
    id: Identifier = Field(description="Camera id; an MQTT topic level and the zone file's camera_id.")
    url: CameraUrl = Field(
        description="rtsp://, http(s)://, file:///video, usb:N or /dev/videoN; the stream analysed "
        "(a camera's sub-stream, e.g. 704x576 or 640x360, when it also has a main stream)."
    )
    main_stream_url: MainStreamUrl | None = Field(
        default=None,
        description="The same camera's full-resolution stream (e.g. its 1080p main stream): while an "
        "event with evidence may be near (an object waiting out its dwell, an update due), the node "
        "opens it in a thread of its own, decodes one keyframe and closes it, and draws the "
        "incident's boxes on that picture; detection stays on `url`. null: evidence from `url`.",
    )
    main_stream_timeout_s: float = Field(
        strict=True,
        default=3.0,
        ge=0.5,
        le=30.0,
        description="Longest the main stream may take to open and show a keyframe, per grab.",
    )
    main_stream_max_age_s: float = Field(
        strict=True,
        default=15.0,
        ge=2.0,
        le=600.0,
        description="Oldest main-stream picture evidence uses; the node grabs a new one before this "
        "age while an event may be near. None this fresh when the event comes: the evidence is drawn "
        "on the analysed frame at once (logged, counted in curbwatch_evidence_main_stream_fallbacks).",
    )
    enabled: bool = Field(strict=True, default=True, description="false: configured but not started.")
    sample_interval_s: float = Field(
        strict=True, default=2.0, ge=0.1, le=600.0, description="Seconds between analysed frames."
    )
    zones: ConfigPath = Field(description="Zone file (YAML/JSON) drawn on this camera.")
    keyframes_only: KeyframesOnly = Field(
        default=KeyframesOnly.AUTO, description="Decode keyframes only: auto, on or off."
    )
    analysis_width_px: int | None = Field(
        strict=True,
        default=960,
        ge=64,
        le=7680,
        description="Analysed frames are at most this wide (never enlarged), scaled in the capture thread "
        "while converting from the decoder's YUV: detector, zones and evidence share that one picture, "
        "so a 1080p camera never makes a full-size copy; null: full resolution.",
    )
    realtime: bool = Field(strict=True, default=False, description="Files only: replay at recorded speed.")
    loop: bool = Field(
        strict=True, default=False, description="Files only: replay forever; stream time keeps growing."
    )
    scene: SceneSettings | None = Field(
        default=None, description="This camera's scene model settings, replacing the node's `scene` whole."
    )


class EvidenceSection(StrictModel):
    blur_faces: bool = Field(
        strict=True,
        default=True,
        description="Blur every face the face detector finds as well as the detector's people.",
    )
    blur_outside_zones: bool = Field(
        strict=True,
        default=False,
        description="Pixelate everything outside the camera's monitored zones in evidence pictures.",
    )


class MetricsSection(StrictModel):
    bind: Annotated[str, StringConstraints(min_length=1)] = Field(
        default="127.0.0.1", description="Address the Prometheus endpoint listens on."
    )
    port: int = Field(
        strict=True, default=9108, ge=0, le=65535, description="Prometheus port; 0 turns metrics off."
    )


class HealthSection(StrictModel):
    interval_s: float = Field(
        strict=True, default=60.0, ge=1.0, le=3600.0, description="Seconds between health messages."
    )
    snapshot_interval_s: float = Field(
        strict=True,
        default=600.0,
        ge=0.0,
        le=86_400.0,
        description="Seconds between camera snapshots; 0: never.",
    )
    snapshot_max_side_px: int = Field(
        strict=True, default=960, ge=64, le=4096, description="Snapshot long side."
    )


def _one_to_64_cameras(cameras: tuple[CameraSection, ...]) -> tuple[CameraSection, ...]:
    # A validator rather than min_length: pydantic reports min_length as well when an item fails.
    if not 1 <= len(cameras) <= 64:
        raise ValueError(f"list 1 to 64 cameras, got {len(cameras)}")
    return cameras


class NodeConfig(StrictModel):
    node_id: Identifier = Field(description="This edge box; the MQTT client id and topic level.")
    mqtt: MqttSection = Field(default_factory=MqttSection, description="The broker the node sends to.")
    outbox: OutboxSection = Field(default_factory=OutboxSection, description="Durable event store.")
    detector: DetectorSection = Field(default_factory=DetectorSection, description="The shared detector.")
    cameras: Annotated[tuple[CameraSection, ...], AfterValidator(_one_to_64_cameras)] = Field(
        description="Cameras analysed (1 to 64)."
    )
    metrics: MetricsSection = Field(default_factory=MetricsSection, description="Prometheus endpoint.")
    health: HealthSection = Field(default_factory=HealthSection, description="Health and snapshots.")
    scene: SceneSettings = Field(
        default_factory=SceneSettings,
        description="The scene model (static objects of any kind) of every camera; a camera may replace it.",
    )
    evidence: EvidenceSection = Field(default_factory=EvidenceSection, description="Privacy of evidence.")
    config_cache: ConfigPath | None = Field(
        default=None,
        description="Where the last good zones from the broker are kept; default: next to outbox.path.",
    )

    @model_validator(mode="after")
    def _cross_rules(self, info: ValidationInfo) -> NodeConfig:
        if (info.context or {}).get("defer_cross_checks"):
            return self
        errors = [f for f in cross_findings(self) if f.severity is Severity.ERROR]
        if errors:
            raise ValueError("; ".join(f"{format_key_path(f.path)}: {f.message}" for f in errors))
        return self

    @property
    def config_cache_path(self) -> Path:
        return self.config_cache or self.outbox.path.with_name("applied-config.json")

    @property
    def enabled_cameras(self) -> tuple[CameraSection, ...]:
        return tuple(camera for camera in self.cameras if camera.enabled)

    def scene_for(self, camera: CameraSection) -> SceneSettings:
        return camera.scene if camera.scene is not None else self.scene


def _duplicate_camera_ids(config: NodeConfig) -> list[Finding]:
    seen: set[str] = set()
    findings = []
    for index, camera in enumerate(config.cameras):
        if camera.id in seen:
            findings.append(Finding(("cameras", index, "id"), f"camera id '{camera.id}' is used twice"))
        seen.add(camera.id)
    return findings


def _main_stream_is_url(config: NodeConfig) -> list[Finding]:
    return [
        Finding(
            ("cameras", index, "main_stream_url"),
            "main_stream_url is the analysed url: evidence gains nothing from opening it again",
            Severity.WARNING,
        )
        for index, camera in enumerate(config.cameras)
        if camera.main_stream_url == camera.url
    ]


def _detector_oversubscribed(config: NodeConfig) -> list[Finding]:
    detector, cores = config.detector, os.cpu_count() or 1
    if detector.workers * detector.threads <= cores:
        return []
    return [
        Finding(
            ("detector", "workers"),
            f"workers x threads = {detector.workers * detector.threads} inference threads on "
            f"{cores} cores: they would take turns, and decoding would wait",
            Severity.WARNING,
        )
    ]


def _password_twice(config: NodeConfig) -> list[Finding]:
    mqtt = config.mqtt
    findings = []
    if mqtt.password is not None and mqtt.password_file is not None:
        findings.append(Finding(("mqtt", "password_file"), "give password or password_file, not both"))
    if (mqtt.password is not None or mqtt.password_file is not None) and mqtt.username is None:
        findings.append(Finding(("mqtt", "username"), "a password needs a username"))
    return findings


def _reconnect_delays(config: NodeConfig) -> list[Finding]:
    if config.mqtt.reconnect_max_s < config.mqtt.reconnect_min_s:
        return [Finding(("mqtt", "reconnect_max_s"), "reconnect_max_s must be >= reconnect_min_s")]
    return []


def _tls_pair(config: NodeConfig) -> list[Finding]:
    tls = config.mqtt.tls
    if tls is not None and (tls.cert_file is None) != (tls.key_file is None):
        return [Finding(("mqtt", "tls"), "cert_file and key_file must be given together")]
    return []


def _no_enabled_camera(config: NodeConfig) -> list[Finding]:
    if config.enabled_cameras:
        return []
    return [Finding(("cameras",), "every camera is disabled: the node would do nothing", Severity.WARNING)]


CROSS_RULES: tuple[Callable[[NodeConfig], list[Finding]], ...] = (
    _duplicate_camera_ids,
    _main_stream_is_url,
    _detector_oversubscribed,
    _password_twice,
    _tls_pair,
    _reconnect_delays,
    _no_enabled_camera,
)


def cross_findings(config: NodeConfig) -> list[Finding]:
    return [finding for rule in CROSS_RULES for finding in rule(config)]


def check_node_document(
    doc: SourceDocument, base_dir: Path, files_severity: Severity = Severity.ERROR
) -> tuple[NodeConfig | None, list[Problem]]:
    """Validate parsed node.yaml: the config (None on any error) and every problem, in line order.

    files_severity: how a missing password, TLS or model file counts; a warning
    when validating away from the box, an error when the node is about to run.
    """
    if not isinstance(doc.data, dict):
        return None, [Problem(doc.source_name, 1, "", "expected a mapping with node_id and cameras")]
    context = {"base_dir": base_dir, "defer_cross_checks": True}
    try:
        config = NodeConfig.model_validate(doc.data, context=context)
    except ValidationError as err:
        return None, _sorted(problems_from_validation_error(err, doc))
    findings = cross_findings(config) + missing_files(config, files_severity)
    problems = _sorted([problem_from_finding(finding, doc) for finding in findings])
    if any(problem.severity is Severity.ERROR for problem in problems):
        return None, problems
    return config, problems


def missing_files(config: NodeConfig, severity: Severity) -> list[Finding]:
    """Secret, TLS and model files the node reads at start that are not readable here."""
    named: list[tuple[tuple[str | int, ...], Path | None]] = [
        (("mqtt", "password_file"), config.mqtt.password_file),
        (("detector", "model"), config.detector.model),
    ]
    if config.mqtt.tls is not None:
        tls = config.mqtt.tls
        named += [(("mqtt", "tls", "ca_file"), tls.ca_file), (("mqtt", "tls", "cert_file"), tls.cert_file)]
        named += [(("mqtt", "tls", "key_file"), tls.key_file)]
    findings = []
    for path, file in named:
        if file is not None and not file.is_file():
            findings.append(Finding(path, f"{file} is not a readable file", severity))
    return findings


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.severity is Severity.WARNING))


def check_zone_files(config: NodeConfig, doc: SourceDocument) -> list[Problem]:
    """Each camera's zone file: its own problems, and a camera_id that does not match."""
    problems: list[Problem] = []
    for index, camera in enumerate(config.cameras):
        zone_file, zone_problems = check_zone_file(camera.zones)
        problems.extend(zone_problems)
        if zone_file is not None and zone_file.camera_id != camera.id:
            message = (
                f"zone file {camera.zones} is drawn for camera '{zone_file.camera_id}', not '{camera.id}'"
            )
            problems.append(problem_from_finding(Finding(("cameras", index, "zones"), message), doc))
    return problems


def validate_node_file(path: Path) -> tuple[NodeConfig | None, list[Problem]]:
    """For `edge validate-config`: node.yaml and every zone file it names; never raises."""
    try:
        doc = load_with_positions(Path(path))
    except ConfigFileError as err:
        return None, list(err.problems)
    config, problems = check_node_document(doc, Path(path).resolve().parent, Severity.WARNING)
    if config is None:
        return None, problems
    problems = problems + check_zone_files(config, doc)
    if any(problem.severity is Severity.ERROR for problem in problems):
        return None, problems
    return config, problems


def load_node_config(path: Path | str) -> NodeConfig:
    """node.yaml -> NodeConfig; raises ConfigFileError listing `file:line: key: message`.

    Zone files are not read here: the node loads them per camera (and may get
    newer ones from the broker); `validate_node_file` checks them up front.
    """
    doc = load_with_positions(Path(path))
    config, problems = check_node_document(doc, Path(path).resolve().parent)
    if config is None:
        raise ConfigFileError(problems)
    return config
