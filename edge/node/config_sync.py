"""Zones from the review server: validate the retained config message, apply it live, keep it.

The review server publishes `{prefix}/{node}/config` retained (uplink.messages.ConfigMessage:
version + one zone document per camera). The publisher's subscription hands each message
to `ConfigSync.on_config`, which:

- validates every camera's document with the zones loader (the same checks as a file);
  one bad document rejects the whole message, so cameras never run a half-applied version;
- on success, writes the message to `cache_path` first (a restart without a broker then
  starts from it) and hands each camera its new ZoneFile; the camera swaps it in between
  two frames (see edge.node.pipeline.CameraPipeline.replace_zones);
- on failure, keeps running on the last good zones and remembers the rejection (version
  and first problems) for the health report (edge.node.status.health_probe).

A message the publisher cannot even read as a ConfigMessage (bad JSON, a missing field, another
node's id) never reaches `on_config`; the publisher hands its problems to `on_rejected`, so the
review server hears of it the same way.

Cameras the message does not mention keep the zones they have; documents for cameras this
node does not run are ignored (a disabled camera keeps its zones for when it is enabled).
A version not newer than the applied one is ignored: the broker redelivers the retained
message on every reconnect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from edge.node.metrics import NodeMetrics
from edge.node.zone_source import ZoneDocument
from uplink.clock import Clock, utc_now
from uplink.files import write_atomic
from uplink.messages import MAX_HEALTH_PROBLEMS, ConfigMessage, ZoneSource, to_json
from zones.loader import ZoneFileError, parse_zone_document
from zones.schema import ZoneFile
from zones.yaml_source import Severity

log = logging.getLogger(__name__)

MAX_REPORTED_PROBLEMS = MAX_HEALTH_PROBLEMS


class ZoneTarget(Protocol):
    """A camera that can take new zones without a restart."""

    def replace_zones(
        self, zone_file: ZoneFile, version: int | None, document: ZoneDocument | None = None
    ) -> None: ...


@dataclass(frozen=True)
class ConfigRejection:
    version: int | None  # None: the message was unreadable, version included
    problems: tuple[str, ...]  # the first MAX_REPORTED_PROBLEMS, as `source:line: key: message`
    at: datetime


@dataclass(frozen=True)
class SyncStatus:
    applied_version: int | None  # None: running on the local zone files of node.yaml
    rejected: ConfigRejection | None  # the latest rejection newer than the applied version


class ConfigSync:
    def __init__(
        self,
        node_id: str,
        targets: Mapping[str, ZoneTarget],
        cache_path: Path,
        *,
        known_classes: Collection[str] | None = None,
        metrics: NodeMetrics | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.node_id = node_id
        self._targets = dict(targets)
        self.cache_path = Path(cache_path)
        self._known_classes = known_classes
        self._metrics = metrics or NodeMetrics()
        self._clock = clock
        self._lock = threading.Lock()
        self._applied_version: int | None = None
        self._rejected: ConfigRejection | None = None

    def status(self) -> SyncStatus:
        with self._lock:
            return SyncStatus(self._applied_version, self._rejected)

    @property
    def applied_version(self) -> int | None:
        return self.status().applied_version

    def load_cached(self) -> bool:
        """Apply the config persisted by an earlier run, if any; True when one was applied."""
        try:
            payload = self.cache_path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as err:
            log.error("config cache %s unreadable: %s; using node.yaml zones", self.cache_path, err)
            return False
        try:
            message = ConfigMessage.model_validate_json(payload)
        except ValidationError as err:
            log.error(
                "config cache %s invalid (%d errors); using node.yaml zones",
                self.cache_path,
                err.error_count(),
            )
            return False
        return self._apply(message, persist=False)

    def on_config(self, message: ConfigMessage) -> None:
        """The publisher's callback for every config message (its config thread, never paho's)."""
        self._apply(message, persist=True)

    def on_rejected(self, version: int | None, problems: Sequence[str]) -> None:
        """The publisher's callback for a config message that is not a valid ConfigMessage."""
        with self._lock:
            if version is not None and self._applied_version is not None and version <= self._applied_version:
                log.debug("unreadable config version %d: already at %d", version, self._applied_version)
                return
            self._reject(version, list(problems) or ["config message: unreadable"])

    def _apply(self, message: ConfigMessage, *, persist: bool) -> bool:
        """Validate outside the lock (the health probe reads status() meanwhile), then swap in."""
        if message.node_id != self.node_id:
            log.error("config v%d is for node %s, not %s", message.version, message.node_id, self.node_id)
            return False
        with self._lock:
            applied, rejected = self._applied_version, self._rejected
        if applied is not None and message.version <= applied:
            log.debug("config version %d: already at %d", message.version, applied)
            return False
        if rejected is not None and rejected.version == message.version:
            # The broker redelivers the retained message on every reconnect: validate a poison once.
            log.debug("config version %d: rejected already", message.version)
            return False
        zone_files, problems = self._validate(message)
        with self._lock:
            if problems:
                self._reject(message.version, problems)
                return False
            if persist:
                write_atomic(self.cache_path, to_json(message))
            for camera_id, zone_file in zone_files.items():
                document = ZoneDocument(
                    message.cameras[camera_id], ZoneSource.CONFIG, config_version=message.version
                )
                self._targets[camera_id].replace_zones(zone_file, message.version, document=document)
            self._applied_version = message.version
            rejected = self._rejected
            if rejected is not None and (rejected.version is None or rejected.version <= message.version):
                self._rejected = None
        self._metrics.config_version.set(message.version)
        log.info(
            "config version %d applied to %d cameras: %s",
            message.version,
            len(zone_files),
            ", ".join(sorted(zone_files)) or "none",
        )
        return True

    def _validate(self, message: ConfigMessage) -> tuple[dict[str, ZoneFile], list[str]]:
        zone_files: dict[str, ZoneFile] = {}
        problems: list[str] = []
        for camera_id, document in message.cameras.items():
            if camera_id not in self._targets:
                log.warning(
                    "config version %d: camera %s is not running on this node", message.version, camera_id
                )
                continue
            source = f"config v{message.version} cameras[{camera_id}]"
            try:
                zone_file = parse_zone_document(document, source, self._known_classes)
            except ZoneFileError as err:
                problems.extend(
                    str(problem) for problem in err.problems if problem.severity is Severity.ERROR
                )
                continue
            except (RecursionError, MemoryError, ValueError) as err:  # beyond what the limits foresee
                problems.append(f"{source}: could not be read: {type(err).__name__}")
                continue
            if zone_file.camera_id != camera_id:
                problems.append(f"{source}: camera_id: is '{zone_file.camera_id}', expected '{camera_id}'")
                continue
            zone_files[camera_id] = zone_file
        return zone_files, problems

    def _reject(self, version: int | None, problems: list[str]) -> None:
        self._rejected = ConfigRejection(version, tuple(problems[:MAX_REPORTED_PROBLEMS]), self._clock())
        self._metrics.config_rejected.inc()
        log.error(
            "config version %s rejected, keeping version %s: %s",
            version if version is not None else "(unreadable)",
            self._applied_version if self._applied_version is not None else "local",
            "; ".join(problems[:MAX_REPORTED_PROBLEMS]),
        )
