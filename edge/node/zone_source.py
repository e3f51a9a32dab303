"""The zone document a camera runs, as text with its origin, so the node can report it.

The review server's editor starts from what the edge really enforces (a local file it never
saw, or a version it published), and each incident names the document it was raised under
by its sha256 (uplink.messages.ZonesReport, IncidentMessage.zones_sha256).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from uplink.messages import MAX_ZONE_DOCUMENT_CHARS, MAX_ZONE_PATH_CHARS, ZoneSource, ZonesReport
from zones.loader import ZoneFileError, parse_zone_document
from zones.schema import ZoneFile
from zones.yaml_source import Problem


@dataclass(frozen=True)
class ZoneDocument:
    text: str
    source: ZoneSource
    path: str | None = None  # source FILE
    config_version: int | None = None  # source CONFIG
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.text.encode("utf-8")).hexdigest())

    def report(self, node_id: str, camera_id: str, at: datetime) -> ZonesReport:
        """The retained report; the text is left out when longer than a config message may carry
        (the zones limit allows more), and the hash still names it."""
        return ZonesReport(
            node_id=node_id,
            camera_id=camera_id,
            at=at,
            sha256=self.sha256,
            source=self.source,
            path=None if self.path is None else self.path[-MAX_ZONE_PATH_CHARS:],
            config_version=self.config_version,
            document=self.text if len(self.text) <= MAX_ZONE_DOCUMENT_CHARS else None,
        )


def read_zone_file(path: Path, known_classes: Collection[str] | None = None) -> tuple[ZoneFile, ZoneDocument]:
    """Read the text once, so the zones run and the text reported are the same bytes."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ZoneFileError([Problem(str(path), None, "", f"cannot read: {err}")]) from err
    zone_file = parse_zone_document(text, str(path), known_classes)
    return zone_file, ZoneDocument(text, ZoneSource.FILE, path=str(path))
