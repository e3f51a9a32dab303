""" "Don't flag this here again": a rejected object proposed as a fixture of its zone.

An inspector rejecting an incident (the planter belongs there, it is permitted, it is not goods)
may propose the objects' boxes as fixtures. An admin sees the proposals on the camera's zone
editor; accepting one adds each object's `{class, box}` to that zone's `fixtures` in the
document the editor would load (the newest stored version, else what the edge reports it
runs), keeping every other line as written, and publishes it as a new zone version like any
edit. The edge then never reports that class at that place again (zones.membership: IoU with
the fixture box >= tolerance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from review_ui import audit, zone_versions
from review_ui.clock import Clock, iso
from review_ui.db import Store
from review_ui.zone_configs import SavedConfig, ZoneConfigs
from review_ui.zone_yaml import merge
from uplink.database import Database
from zones.yaml_source import ConfigFileError, parse_text

# Looser than the schema's 0.5: a detector finds a group of objects as a whole and as parts (two
# parked bicycles as one box and as each bicycle); 0.3 catches the parts and still needs the box
# to lie mostly where the rejected one was. An admin may tighten it in the document.
FIXTURE_TOLERANCE = 0.3


class ProposalError(Exception):
    """A proposal that cannot be made or accepted; `key` names the sentence for the pages."""

    def __init__(self, message: str, key: str, status_code: int = 409) -> None:
        super().__init__(message)
        self.key = key
        self.status_code = status_code


@dataclass(frozen=True)
class Accepted:
    proposal_id: int
    saved: SavedConfig


def editor_document(db: Database, node_id: str, camera_id: str) -> str | None:
    """The document the zone editor opens with: the newest stored version, else the edge's."""
    stored = zone_versions.latest_document(db, node_id, camera_id)
    if stored is not None:
        return stored
    edge = zone_versions.edge_zones(db, node_id, camera_id)
    return None if edge is None else edge.document


def _objects_of(label: str, bbox_json: str | None, objects_json: str | None) -> list[dict[str, Any]]:
    """Every object of the incident as {class, box}; the primary box when it lists none."""
    found = []
    for item in json.loads(objects_json or "[]"):
        box = [float(v) for v in item.get("bbox") or []]
        if len(box) == 4 and box[0] < box[2] and box[1] < box[3]:
            found.append({"class": str(item.get("label") or label), "box": box})
    if not found:
        box = [float(v) for v in json.loads(bbox_json or "[]")]
        if len(box) == 4 and box[0] < box[2] and box[1] < box[3]:
            found.append({"class": label, "box": box})
    return found


def propose(db: Database, clock: Clock, incident_id: str, user: str, ip: str = "") -> int:
    """Inside the rejection's transaction: the incident's objects as one fixture proposal."""
    row = db.execute(
        "SELECT node_id, camera_id, zone_id, label, bbox, objects FROM incidents WHERE incident_id = ?",
        [incident_id],
    ).fetchone()
    if row is None:
        raise ProposalError("no such incident", "not_found", 404)
    node_id, camera_id, zone_id, label, bbox_json, objects_json = row
    fixtures = _objects_of(label, bbox_json, objects_json)
    if not fixtures:
        raise ProposalError("the incident has no object box to make a fixture of", "proposal_no_box", 422)
    cursor = db.execute(
        "INSERT INTO fixture_proposals (incident_id, node_id, camera_id, zone_id, fixtures,"
        " proposed_by, proposed_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending') RETURNING id",
        [incident_id, node_id, camera_id, zone_id, json.dumps(fixtures), user, iso(clock.now())],
    )
    proposal_id = int(cursor.fetchone()[0])
    audit.record(
        db, clock, user, "fixture.propose", incident_id, {"proposal": proposal_id, "fixtures": fixtures}, ip
    )
    return proposal_id


def pending(db: Database, node_id: str, camera_id: str) -> list[dict[str, Any]]:
    rows = list(
        db.query(
            "SELECT p.*, v.reason FROM fixture_proposals p"
            " LEFT JOIN verdicts v ON v.incident_id = p.incident_id AND v.verdict = 'rejected'"
            " WHERE p.node_id = ? AND p.camera_id = ? AND p.status = 'pending' ORDER BY p.id",
            [node_id, camera_id],
        )
    )
    for row in rows:
        row["fixtures"] = json.loads(row["fixtures"])
    return rows


def with_fixtures(document: str, zone_id: str, fixtures: list[dict[str, Any]], name: str) -> str:
    """`document` with these fixtures added to zone `zone_id`, every other line as written."""
    data = parse_text(document, "stored").data
    zones = data.get("zones") if isinstance(data, dict) else None
    zone = next((z for z in zones or [] if isinstance(z, dict) and z.get("id") == zone_id), None)
    if zone is None:
        raise ProposalError(f"zone {zone_id!r} is no longer in the document", "proposal_zone_gone")
    added = [
        {
            "class": f["class"],
            "box": [round(v, 4) for v in f["box"]],
            "tolerance": FIXTURE_TOLERANCE,
            "name": name,
        }
        for f in fixtures
    ]
    zone["fixtures"] = [*(zone.get("fixtures") or []), *added]
    return merge(document, data)


class Proposals:
    def __init__(self, store: Store, clock: Clock, zones: ZoneConfigs) -> None:
        self.store = store
        self.clock = clock
        self.zones = zones

    def accept(self, proposal_id: int, user: str, ip: str = "") -> Accepted:
        """Add the fixture to the zone and publish the document as a new version."""
        db = self.store.read()
        proposal = db.execute(
            "SELECT node_id, camera_id, zone_id, fixtures, incident_id, status FROM fixture_proposals"
            " WHERE id = ?",
            [proposal_id],
        ).fetchone()
        if proposal is None:
            raise ProposalError("no such proposal", "not_found", 404)
        node_id, camera_id, zone_id, fixtures, incident_id, status = proposal
        if status != "pending":
            raise ProposalError(f"proposal already {status}", "proposal_decided")
        document = editor_document(db, node_id, camera_id)
        if document is None:
            raise ProposalError("no zone document known for this camera", "proposal_zone_gone")
        try:
            text = with_fixtures(document, zone_id, json.loads(fixtures), f"incident {incident_id[:8]}")
        except ConfigFileError as exc:
            raise ProposalError(f"the zone document cannot be read: {exc}", "zone_yaml_broken") from exc
        saved = self.zones.save(node_id, camera_id, text, user, ip)
        self._decide(proposal_id, "accepted", user, ip, saved.version)
        return Accepted(proposal_id, saved)

    def dismiss(self, proposal_id: int, user: str, ip: str = "") -> None:
        self._decide(proposal_id, "dismissed", user, ip, None)

    def _decide(self, proposal_id: int, status: str, user: str, ip: str, version: int | None) -> None:
        with self.store.write() as db:
            cursor = db.execute(
                "UPDATE fixture_proposals SET status = ?, decided_by = ?, decided_at = ?, zone_version = ?"
                " WHERE id = ? AND status = 'pending'",
                [status, user, iso(self.clock.now()), version, proposal_id],
            )
            if not cursor.rowcount:
                raise ProposalError("no such pending proposal", "proposal_decided")
            audit.record(
                db,
                self.clock,
                user,
                f"fixture.{'accept' if status == 'accepted' else 'dismiss'}",
                str(proposal_id),
                {"zone_version": version},
                ip,
            )
