"""Verdicts as training data: the ZIP from the API and from the CLI, its manifest and images."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from edge.cli import main
from review_ui.review import RejectReason, Verdict
from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed
from tests.review_ui.evidence_support import LEUVEN_WH, leuven_incident
from tests.review_ui.support import incident_message, login

MANIFEST_KEYS = {
    "incident_id",
    "camera",
    "zone",
    "label",
    "bbox",
    "verdict",
    "reason",
    "note",
    "decided_at",
    "image",
}
# Added for training (issue 12); the keys above keep their names and meaning.
TRAINING_KEYS = {"first_seen_at", "image_wh", "objects", "label_file", "crops"}


def reviewed(server: ReviewServer, feed: Feed) -> dict[str, str]:
    """One confirmed, two rejected (one of them without evidence), one still pending."""
    ids = {
        "confirmed": feed.send(incident_message()),
        "rejected": feed.send(incident_message(label="bench", bbox=(0.2, 0.4, 0.5, 0.95))),
        "rejected_bare": feed.send(incident_message(evidence=False)),
        "pending": feed.send(incident_message()),
    }
    reviewer = server.context.reviewer
    reviewer.give_verdict(ids["confirmed"], Verdict.CONFIRMED, None, "", "inspector")
    server.context.clock.advance(3600)  # type: ignore[attr-defined]
    reviewer.give_verdict(
        ids["rejected"], Verdict.REJECTED, RejectReason.PERMITTED, "持证外摆区", "inspector"
    )
    reviewer.give_verdict(ids["rejected_bare"], Verdict.REJECTED, RejectReason.WRONG_OBJECT, "", "inspector")
    return ids


def read_zip(data: bytes) -> tuple[list[dict[str, object]], zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    lines = archive.read("manifest.jsonl").decode("utf-8").splitlines()
    return [json.loads(line) for line in lines], archive


def test_admin_exports_every_verdict_with_its_evidence(
    client: TestClient, server: ReviewServer, feed: Feed
) -> None:
    ids = reviewed(server, feed)
    login(client, "admin")
    response = client.get("/api/v1/exports/verdicts")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    records, archive = read_zip(response.content)
    assert [r["incident_id"] for r in records] == [ids["confirmed"], ids["rejected"], ids["rejected_bare"]]
    assert all(set(r) == MANIFEST_KEYS | TRAINING_KEYS for r in records)
    rejected = records[1]
    assert rejected["verdict"] == "rejected" and rejected["reason"] == "permitted"
    assert rejected["note"] == "持证外摆区" and rejected["label"] == "bench" and rejected["zone"]
    assert rejected["camera"] == "cam-01" and rejected["bbox"] == pytest.approx([0.2, 0.4, 0.5, 0.95])
    assert str(rejected["decided_at"]).startswith("2026-05-01T03:00:00")
    assert records[0]["verdict"] == "confirmed" and records[0]["reason"] is None
    assert records[2]["image"] is None  # no evidence: listed, no image
    assert records[2]["label_file"] is None and records[2]["crops"] == []
    names = set(archive.namelist())
    pictures = {f"images/{ids['confirmed']}.jpg", f"images/{ids['rejected']}.jpg"}
    assert {"manifest.jsonl", "data.yaml"} | pictures <= names
    assert {n for n in names if n.startswith("images/")} == pictures
    for record in records[:2]:
        image = archive.read(str(record["image"]))
        stored = feed.db.execute(
            "SELECT evidence_path FROM incidents WHERE incident_id = ?", [record["incident_id"]]
        ).fetchone()[0]
        assert image[:3] == b"\xff\xd8\xff" and image == (server.config.evidence_dir / stored).read_bytes()
    audit = server.store.read().execute("SELECT who, detail FROM audit_log WHERE what = 'export.verdicts'")
    who, detail = audit.fetchone()
    assert who == "admin" and json.loads(detail) == {"since": "", "verdicts": 3, "images": 2}


def test_since_keeps_later_verdicts_only(client: TestClient, server: ReviewServer, feed: Feed) -> None:
    ids = reviewed(server, feed)
    login(client, "admin")
    records, _ = read_zip(client.get("/api/v1/exports/verdicts?since=2026-05-01T02:30:00Z").content)
    assert [r["incident_id"] for r in records] == [ids["rejected"], ids["rejected_bare"]]
    records, _ = read_zip(client.get("/api/v1/exports/verdicts?since=2026-05-02").content)
    assert records == []
    assert client.get("/api/v1/exports/verdicts?since=yesterday").status_code == 422
    assert client.get("/api/v1/exports/verdicts?since=2026-05-01' OR 1=1 --").status_code == 422


@pytest.mark.parametrize("user", ["viewer", "inspector"])
def test_only_admins_export(client: TestClient, server: ReviewServer, feed: Feed, user: str) -> None:
    reviewed(server, feed)
    login(client, user)
    assert client.get("/api/v1/exports/verdicts").status_code == 403
    client.cookies.clear()
    assert client.get("/api/v1/exports/verdicts").status_code == 401
    count = "SELECT count(*) FROM audit_log WHERE what = 'export.verdicts'"
    assert server.store.read().execute(count).fetchone()[0] == 0


def test_the_audit_page_has_the_export_button(client: TestClient) -> None:
    login(client, "admin")
    page = client.get("/audit", params={"lang": "en"}).text
    assert 'action="/api/v1/exports/verdicts"' in page and 'name="since"' in page and "Download ZIP" in page


def test_cli_export(tmp_path: Path, server: ReviewServer, feed: Feed) -> None:
    ids = reviewed(server, feed)
    config = tmp_path / "review.yaml"
    config.write_text(
        f"database_url: '{server.config.database}'\nevidence_dir: {server.config.evidence_dir}\n"
        f"secret_key_file: {server.config.secret_key_file}\n"
    )
    out = tmp_path / "out" / "verdicts.zip"
    out.parent.mkdir()
    result = CliRunner().invoke(
        main, ["review", "export-verdicts", "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "3 verdicts and 2 images" in result.output
    records, archive = read_zip(out.read_bytes())
    assert {r["incident_id"] for r in records} == {ids["confirmed"], ids["rejected"], ids["rejected_bare"]}
    assert len([n for n in archive.namelist() if n.startswith("images/")]) == 2
    assert not list(out.parent.glob("*.part"))
    who = server.store.read().execute("SELECT who FROM audit_log WHERE what = 'export.verdicts'")
    assert who.fetchone()[0] == "cli"
    bad = CliRunner().invoke(
        main, ["review", "export-verdicts", "--config", str(config), "--out", str(out), "--since", "x"]
    )
    assert bad.exit_code == 2 and "since" in bad.output and "Traceback" not in bad.output
    shutil.rmtree(out.parent)


def test_yolo_material_from_real_evidence(
    client: TestClient, server: ReviewServer, feed: Feed, leuven_jpg: Path
) -> None:
    """leuvenB.jpg through the edge's renderer: two bicycles and a chair, numbered in the picture."""
    confirmed = feed.send(leuven_incident(leuven_jpg))
    rejected = feed.send(leuven_incident(leuven_jpg, camera_id="cam-02"))
    old_node = feed.send(incident_message(label="bench", bbox=(0.25, 0.5, 0.75, 1.0)))  # no objects
    reviewer = server.context.reviewer
    reviewer.give_verdict(confirmed, Verdict.CONFIRMED, None, "", "inspector")
    reviewer.give_verdict(rejected, Verdict.REJECTED, RejectReason.PERMITTED, "", "inspector")
    reviewer.give_verdict(old_node, Verdict.CONFIRMED, None, "", "inspector")
    login(client, "admin")
    records, archive = read_zip(client.get("/api/v1/exports/verdicts").content)
    by_id = {r["incident_id"]: r for r in records}
    drawn = by_id[confirmed]["objects"]
    assert isinstance(drawn, list) and sorted(o["label"] for o in drawn) == ["bicycle", "bicycle", "chair"]
    chair = next(n for n, o in enumerate(drawn) if o["label"] == "chair")
    assert by_id[confirmed]["image_wh"] == list(LEUVEN_WH) and by_id[old_node]["objects"] is None
    data = YAML(typ="safe").load(archive.read("data.yaml").decode())
    assert data["names"] == {0: "bench", 1: "bicycle", 2: "chair"}
    assert (data["train"], data["val"]) == ("images", "images")
    lines = archive.read(f"labels/{confirmed}.txt").decode().splitlines()
    assert [line.split()[0] for line in lines] == ["2" if o["label"] == "chair" else "1" for o in drawn]
    x1, y1, x2, y2 = drawn[chair]["bbox"]
    assert [float(v) for v in lines[chair].split()[1:]] == pytest.approx(
        [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], abs=1e-6
    )
    assert archive.read(f"labels/{rejected}.txt") == b""  # a background picture
    # An incident from a node before incident/3 is labelled with its own label and box.
    old_line = archive.read(f"labels/{old_node}.txt").decode().split()
    assert [float(v) for v in old_line] == [0, 0.5, 0.75, 0.5, 0.5]
    crops = by_id[rejected]["crops"]
    assert crops == [f"crops/rejected/{o['label']}/{rejected}-{n}.jpg" for n, o in enumerate(drawn, start=1)]
    assert isinstance(crops, list)
    close_up = cv2.imdecode(np.frombuffer(archive.read(crops[chair]), np.uint8), cv2.IMREAD_COLOR)
    assert close_up is not None and 96 <= close_up.shape[1] < LEUVEN_WH[0]
    assert all(by_id[i]["label_file"] == f"labels/{i}.txt" for i in (confirmed, rejected, old_node))
