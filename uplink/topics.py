"""Topic names of the contract, and parsing a received topic back into (kind, node, camera).

Layout under the prefix (default "curbwatch/v1"):
    {prefix}/{node}/status              retained "online" | "offline" (the Last Will)
    {prefix}/{node}/health              retained NodeHealth JSON
    {prefix}/{node}/config              retained ConfigMessage JSON, from the review server
    {prefix}/{node}/{camera}/status     retained CameraStatus JSON
    {prefix}/{node}/{camera}/incident   QoS 1 IncidentMessage JSON
    {prefix}/{node}/{camera}/snapshot   retained raw JPEG bytes
    {prefix}/{node}/{camera}/zones      retained ZonesReport JSON: the zone document it runs
Node-level and camera-level topics differ in depth, so a camera may be called "status".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_PREFIX = "curbwatch/v1"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TopicKind(StrEnum):
    NODE_STATUS = "status"
    NODE_HEALTH = "health"
    NODE_CONFIG = "config"
    NODE_ACK = "ack"
    CAMERA_STATUS = "camera-status"
    INCIDENT = "incident"
    SNAPSHOT = "snapshot"
    CAMERA_ZONES = "zones"


_NODE_LEAVES = {
    "status": TopicKind.NODE_STATUS,
    "health": TopicKind.NODE_HEALTH,
    "config": TopicKind.NODE_CONFIG,
    "ack": TopicKind.NODE_ACK,
}
_CAMERA_LEAVES = {
    "status": TopicKind.CAMERA_STATUS,
    "incident": TopicKind.INCIDENT,
    "snapshot": TopicKind.SNAPSHOT,
    "zones": TopicKind.CAMERA_ZONES,
}


class TopicError(ValueError):
    """A topic that is not part of the contract, or an id that cannot be a topic level."""


@dataclass(frozen=True)
class ParsedTopic:
    kind: TopicKind
    node_id: str
    camera_id: str | None = None


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise TopicError(f"{what} {value!r} is not a valid id (letters, digits, . _ -; at most 64)")
    return value


@dataclass(frozen=True)
class Topics:
    """Builds and parses the topics under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        levels = self.prefix.split("/")
        if not self.prefix or any(not level or level in {"+", "#"} for level in levels):
            raise TopicError(f"prefix {self.prefix!r} must be non-empty levels without wildcards")

    def node_status(self, node_id: str) -> str:
        return f"{self.prefix}/{check_id(node_id, 'node')}/status"

    def node_health(self, node_id: str) -> str:
        return f"{self.prefix}/{check_id(node_id, 'node')}/health"

    def node_config(self, node_id: str) -> str:
        return f"{self.prefix}/{check_id(node_id, 'node')}/config"

    def node_ack(self, node_id: str) -> str:
        """The centre's end-to-end acknowledgements of stored events, to one node."""
        return f"{self.prefix}/{check_id(node_id, 'node')}/ack"

    def camera_status(self, node_id: str, camera_id: str) -> str:
        return f"{self.prefix}/{check_id(node_id, 'node')}/{check_id(camera_id, 'camera')}/status"

    def incident(self, node_id: str, camera_id: str) -> str:
        return f"{self.prefix}/{check_id(node_id, 'node')}/{check_id(camera_id, 'camera')}/incident"

    def snapshot(self, node_id: str, camera_id: str) -> str:
        return f"{self.prefix}/{check_id(node_id, 'node')}/{check_id(camera_id, 'camera')}/snapshot"

    def camera_zones(self, node_id: str, camera_id: str) -> str:
        """The zone document a camera runs (uplink.messages.ZonesReport), retained."""
        return f"{self.prefix}/{check_id(node_id, 'node')}/{check_id(camera_id, 'camera')}/zones"

    def ingest_subscriptions(self, shared_group: str | None = None) -> list[str]:
        """What the review server's ingest subscribes to (not config: it publishes that). With a
        group, as MQTT shared subscriptions: each message goes to one worker of the group."""
        share = f"$share/{check_id(shared_group, 'shared group')}/" if shared_group is not None else ""
        return [
            share + topic
            for topic in (
                f"{self.prefix}/+/status",
                f"{self.prefix}/+/health",
                f"{self.prefix}/+/+/status",
                f"{self.prefix}/+/+/incident",
                f"{self.prefix}/+/+/snapshot",
                f"{self.prefix}/+/+/zones",
            )
        ]

    def parse(self, topic: str) -> ParsedTopic:
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise TopicError(f"topic {topic!r} is not under prefix {self.prefix!r}")
        levels = topic[len(head) :].split("/")
        if len(levels) == 2 and levels[1] in _NODE_LEAVES:
            return ParsedTopic(_NODE_LEAVES[levels[1]], check_id(levels[0], "node"))
        if len(levels) == 3 and levels[2] in _CAMERA_LEAVES:
            return ParsedTopic(
                _CAMERA_LEAVES[levels[2]], check_id(levels[0], "node"), check_id(levels[1], "camera")
            )
        raise TopicError(f"topic {topic!r} is not part of the curbwatch contract")
