"""Zone documents per camera: validate with `zones`, store a new version, publish it retained.

A node's config message carries the latest document of every camera on that node, under one
version number per node (ConfigMessage.version), so the node can report one applied version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from review_ui import audit, zone_versions
from review_ui.clock import Clock, iso
from review_ui.db import Store
from uplink.config_publish import ConfigPublishError, publish_config
from uplink.messages import ConfigMessage
from uplink.settings import MqttSettings
from uplink.topics import TopicError, check_id
from zones.loader import check_document
from zones.yaml_source import ConfigFileError, Problem, load_with_positions

log = logging.getLogger(__name__)


class ZoneDocumentInvalid(Exception):
    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{p['key']}: {p['message']}" for p in problems))
        self.problems = problems


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "line": problem.line,
        "key": problem.key_path,
        "message": problem.message,
        "severity": str(problem.severity),
    }


class PublishError(Exception):
    pass


class UnknownVersion(LookupError):
    """Revert to a version this camera never had."""


class ConfigPublisher(Protocol):
    def publish(self, message: ConfigMessage) -> None:
        """Retained on {prefix}/{node}/config; returns after the PUBACK, raises PublishError otherwise."""
        ...


class NoPublisher:
    """The null publisher when MQTT is off: saving still stores the version."""

    def publish(self, message: ConfigMessage) -> None:
        raise PublishError("MQTT is not configured")


class UplinkConfigPublisher:
    """Publishes with uplink's `publish_config` under its own client id (never the ingest's:
    the same id would take over the ingest's persistent session)."""

    def __init__(self, settings: MqttSettings, timeout_s: float = 10.0) -> None:
        self.settings = settings.model_copy(update={"client_id": settings.client_id[:56] + "-config"})
        self.timeout_s = timeout_s

    def publish(self, message: ConfigMessage) -> None:
        try:
            publish_config(self.settings, message.node_id, message, timeout_s=self.timeout_s)
        except (ConfigPublishError, OSError, ValueError) as exc:
            raise PublishError(str(exc)) from exc


@dataclass(frozen=True)
class SavedConfig:
    node_id: str
    camera_id: str
    version: int
    published: bool
    publish_error: str | None


class ZoneConfigs:
    def __init__(self, store: Store, clock: Clock, publisher: ConfigPublisher) -> None:
        self.store = store
        self.clock = clock
        self.publisher = publisher

    def check(self, node_id: str, camera_id: str, document: str) -> list[dict[str, Any]]:
        """Every problem (errors and warnings) of a document for this camera, in file order.

        Side-effect free: reads and writes nothing, so the editor may call it on every edit."""
        problems: list[dict[str, Any]] = []
        for value, what in ((node_id, "node"), (camera_id, "camera")):
            try:
                check_id(value, what)
            except TopicError as exc:
                problems.append({"line": None, "key": "", "message": str(exc), "severity": "error"})
        try:
            doc = load_with_positions(document, f"{camera_id}.yaml")
        except ConfigFileError as exc:
            return problems + [_problem(p) for p in exc.problems]
        zone_file, found = check_document(doc)
        problems.extend(_problem(p) for p in found)
        if zone_file is not None and zone_file.camera_id != camera_id:
            problems.append(
                {
                    "line": None,
                    "key": "camera_id",
                    "severity": "error",
                    "message": f"document is for {zone_file.camera_id!r}, not {camera_id!r}",
                }
            )
        return problems

    def validate(self, node_id: str, camera_id: str, document: str) -> None:
        """Raises ZoneDocumentInvalid (with the warnings too) if the document has any error."""
        problems = self.check(node_id, camera_id, document)
        if any(p["severity"] == "error" for p in problems):
            raise ZoneDocumentInvalid(problems)

    def latest(self, node_id: str, camera_id: str) -> dict[str, Any] | None:
        rows = list(
            self.store.read().query(
                "SELECT z.version, z.document, z.published_at, z.published_by, n.config_version"
                " FROM zone_configs z LEFT JOIN nodes n ON n.node_id = z.node_id"
                " WHERE z.node_id = ? AND z.camera_id = ? ORDER BY z.version DESC LIMIT 1",
                [node_id, camera_id],
            )
        )
        if not rows:
            return None
        row = rows[0]
        row["applied"] = row["config_version"] is not None and row["config_version"] >= row["version"]
        return row

    def revert(self, node_id: str, camera_id: str, version: int, user: str, ip: str = "") -> SavedConfig:
        """Publish an old version's document again, as a new version (audited as a revert)."""
        document = zone_versions.stored_document(self.store.read(), node_id, camera_id, version)
        if document is None:
            raise UnknownVersion(f"{node_id}/{camera_id} has no stored version {version}")
        return self.save(node_id, camera_id, document, user, ip, reverted_from=version)

    def save(
        self,
        node_id: str,
        camera_id: str,
        document: str,
        user: str,
        ip: str = "",
        *,
        reverted_from: int | None = None,
    ) -> SavedConfig:
        self.validate(node_id, camera_id, document)
        now = self.clock.now()
        with self.store.write() as db:
            version = 1 + (
                db.execute("SELECT max(version) FROM zone_configs WHERE node_id = ?", [node_id]).fetchone()[0]
                or 0
            )
            db.execute(
                "INSERT INTO zone_configs (node_id, camera_id, version, document, published_at, published_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [node_id, camera_id, version, document, iso(now), user],
            )
            cameras = {
                cam: doc
                for cam, doc in db.execute(
                    "SELECT camera_id, document FROM zone_configs z WHERE node_id = ? AND version ="
                    " (SELECT max(version) FROM zone_configs"
                    " WHERE node_id = z.node_id AND camera_id = z.camera_id)",
                    [node_id],
                )
            }
            what, detail = "zones.save", {"version": version}
            if reverted_from is not None:
                what, detail = "zones.revert", {"version": version, "reverted_from": reverted_from}
            audit.record(db, self.clock, user, what, f"{node_id}/{camera_id}", detail, ip)
        message = ConfigMessage(node_id=node_id, version=version, issued_at=now, cameras=cameras)
        try:
            self.publisher.publish(message)
        except PublishError as exc:
            log.warning("zones %s/%s v%d stored but not published: %s", node_id, camera_id, version, exc)
            return SavedConfig(node_id, camera_id, version, False, str(exc))
        with self.store.write() as db:
            audit.record(
                db, self.clock, user, "zones.publish", f"{node_id}/{camera_id}", {"version": version}
            )
        return SavedConfig(node_id, camera_id, version, True, None)

    def mark_applied(self) -> None:
        """Stamp applied_at on versions a node reports as applied (called on ingest changes)."""
        with self.store.write() as db:
            db.execute(
                "UPDATE zone_configs SET applied_at = ? WHERE applied_at IS NULL AND version <="
                " (SELECT config_version FROM nodes n WHERE n.node_id = zone_configs.node_id)",
                [iso(self.clock.now())],
            )
