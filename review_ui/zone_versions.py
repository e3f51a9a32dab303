"""Which zone document is where: stored versions, what the edge reports it runs, and the one an
incident was raised under. Read-only; `zone_configs.ZoneConfigs` writes.

The edge reports every document a camera runs (curbwatch.zones/1, table zone_reports, by
sha256) and names it on each incident (incident/3: zones_sha256, zones_config_version).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from typing import Any

from uplink.database import Database


def sha256_of(document: str) -> str:
    """As the edge hashes a document: its text in UTF-8."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EdgeZones:
    """The zone document a camera reports it runs now."""

    sha256: str
    source: str  # "file" | "config"
    path: str | None
    config_version: int | None
    document: str | None  # None: too long to travel; only its hash is known
    at: str


def _table_exists(db: Database, name: str) -> bool:
    return name in db.table_names()


def edge_zones(db: Database, node_id: str, camera_id: str) -> EdgeZones | None:
    if not _table_exists(db, "zone_reports"):  # the ingest has not migrated this database yet
        return None
    row = db.execute(
        "SELECT r.sha256, r.source, r.path, r.config_version, r.document, r.at FROM cameras c"
        " JOIN zone_reports r ON r.node_id = c.node_id AND r.camera_id = c.camera_id"
        " AND r.sha256 = c.zones_sha256 WHERE c.node_id = ? AND c.camera_id = ?",
        [node_id, camera_id],
    ).fetchone()
    return None if row is None else EdgeZones(*row)


def history(db: Database, node_id: str, camera_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Stored versions, newest first, each with `applied` (the node reached that version) and
    `running` (the camera reports running exactly this text)."""
    running = edge_zones(db, node_id, camera_id)
    rows = list(
        db.query(
            "SELECT z.version, z.document, z.published_at, z.published_by, n.config_version"
            " FROM zone_configs z LEFT JOIN nodes n ON n.node_id = z.node_id"
            " WHERE z.node_id = ? AND z.camera_id = ? ORDER BY z.version DESC LIMIT ?",
            [node_id, camera_id, limit],
        )
    )
    for row in rows:
        row["applied"] = row["config_version"] is not None and row["config_version"] >= row["version"]
        row["running"] = running is not None and running.sha256 == sha256_of(row["document"])
    return rows


def stored_document(db: Database, node_id: str, camera_id: str, version: int) -> str | None:
    row = db.execute(
        "SELECT document FROM zone_configs WHERE node_id = ? AND camera_id = ? AND version = ?",
        [node_id, camera_id, version],
    ).fetchone()
    return None if row is None else str(row[0])


def incident_document(db: Database, incident: dict[str, Any]) -> str | None:
    """The zone text the edge ran when it raised `incident`; None when that is not known."""
    node_id, camera_id = incident["node_id"], incident["camera_id"]
    sha = incident.get("zones_sha256")
    if sha and _table_exists(db, "zone_reports"):
        row = db.execute(
            "SELECT document FROM zone_reports WHERE node_id = ? AND camera_id = ? AND sha256 = ?"
            " AND document IS NOT NULL",
            [node_id, camera_id, sha],
        ).fetchone()
        if row is not None:
            return str(row[0])
    version = incident.get("zones_config_version")
    if version:
        # One version number per node: this camera's document at node version V is its
        # newest stored version up to V.
        row = db.execute(
            "SELECT document FROM zone_configs WHERE node_id = ? AND camera_id = ? AND version <= ?"
            " ORDER BY version DESC LIMIT 1",
            [node_id, camera_id, version],
        ).fetchone()
        if row is not None:
            return str(row[0])
    return None


def latest_document(db: Database, node_id: str, camera_id: str) -> str | None:
    row = db.execute(
        "SELECT document FROM zone_configs WHERE node_id = ? AND camera_id = ? ORDER BY version DESC LIMIT 1",
        [node_id, camera_id],
    ).fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class Baseline:
    """What a save is compared with: the document running on the edge, else the newest stored."""

    against: str  # "edge" | "stored" | "nothing"
    document: str
    version: int | None = None
    path: str | None = None


def baseline(db: Database, node_id: str, camera_id: str) -> Baseline:
    edge = edge_zones(db, node_id, camera_id)
    if edge is not None and edge.document is not None:
        return Baseline("edge", edge.document, edge.config_version, edge.path)
    row = db.execute(
        "SELECT version, document FROM zone_configs WHERE node_id = ? AND camera_id = ?"
        " ORDER BY version DESC LIMIT 1",
        [node_id, camera_id],
    ).fetchone()
    if row is not None:
        return Baseline("stored", str(row[1]), int(row[0]))
    return Baseline("nothing", "")


MAX_DIFF_LINES = 2000  # a whole-file rewrite of a big document is still shown, up to here


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> list[dict[str, str]]:
    """A line diff as [{"kind": "head"|"hunk"|"add"|"del"|"same", "text"}]."""
    lines = []
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=3)
    for index, text in enumerate(diff):
        if index < 2:  # the two file names
            kind = "head"
        elif text.startswith("@@"):
            kind = "hunk"
        elif text.startswith("+"):
            kind = "add"
        elif text.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        lines.append({"kind": kind, "text": text})
        if len(lines) >= MAX_DIFF_LINES:
            lines.append({"kind": "hunk", "text": "…"})
            break
    return lines
