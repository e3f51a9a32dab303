"""The zone document a camera runs: read once, reported with its origin, named on incidents."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.node.zone_source import ZoneDocument, read_zone_file
from uplink.messages import MAX_ZONE_DOCUMENT_CHARS, ZoneSource, ZonesReport, to_json
from zones.loader import ZoneFileError

AT = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
ZONES = """\
camera_id: cam-01
zones:
  - id: east-pavement  # 东侧人行道
    kind: monitored
    polygon: [[0.60, 0.46], [0.96, 0.49], [0.99, 0.78], [0.63, 0.76]]
    shop: {id: shop-demo-01, name: "East Fruit 东水果店"}
    cooldown_s: 10
"""


def test_a_local_file_is_reported_with_its_path_and_exact_text(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(ZONES, encoding="utf-8")
    zone_file, document = read_zone_file(path)
    assert zone_file.zones[0].id == "east-pavement"
    report = document.report("node-a", "cam-01", AT)
    assert (report.source, report.path, report.config_version) == (ZoneSource.FILE, str(path), None)
    assert report.document == ZONES
    assert report.sha256 == hashlib.sha256(ZONES.encode("utf-8")).hexdigest()
    assert ZonesReport.model_validate_json(to_json(report)) == report  # what the ingest reads


def test_a_document_longer_than_a_config_message_is_reported_by_its_hash_only() -> None:
    text = "camera_id: cam-01\nzones: []\n" + "#" * MAX_ZONE_DOCUMENT_CHARS
    report = ZoneDocument(text, ZoneSource.FILE, path="/big.yaml").report("node-a", "cam-01", AT)
    assert report.document is None and report.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert len(to_json(report)) < 1024


def test_an_unreadable_or_invalid_file_is_a_zone_file_error(tmp_path: Path) -> None:
    with pytest.raises(ZoneFileError, match="cannot read"):
        read_zone_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera_id: cam-01\nzones:\n  - id: a\n    kind: monitored\n    polygon: [[0, 0]]\n")
    with pytest.raises(ZoneFileError, match=r"bad\.yaml:5"):
        read_zone_file(bad)
