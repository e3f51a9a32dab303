"""The zone editor round-trips with what the edge runs: edge-reported start, every field kept,
drawing written into the YAML, diff before publishing, history and revert, readable problems."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from review_ui.service import ReviewServer
from review_ui.web.pages_review import incident_zone_polygons
from tests.review_ui.conftest import Feed
from tests.review_ui.support import CAMERA, NODE, T0, incident_message
from uplink.messages import ConfigMessage, ZoneSource, ZonesReport, to_json
from uplink.topics import Topics
from zones.loader import parse_zone_document

API = f"/api/v1/zones/{NODE}/{CAMERA}"
PAGE = f"/zones/{NODE}/{CAMERA}"
# Every kind of field the form has no input for, with comments and quotes to keep.
FULL = """\
# The demo camera, as the edge's file has it.
schema_version: 1
camera_id: cam-01
timezone: Asia/Shanghai
zones:
  - id: east-pavement
    name: 东侧人行道 (水果店门前)
    kind: monitored
    polygon: [[0.60, 0.46], [0.96, 0.49], [0.99, 0.78], [0.63, 0.76]]
    shop: {id: shop-demo-01, name: "East Fruit 东水果店", phone: "+86 591 1234 5678"}
    classes: [chair, bench, bicycle]
    min_confidence: 0.3
    min_area: 0.001
    dwell_s: 10
    clear_s: 8
    update_every_s: 10
    cooldown_s: 10
    schedule:
      weekly:
        - {days: [mon, tue, wed, thu, fri], start: "08:00", end: "21:00"}
      exceptions:
        - {date: 2026-05-01, active: false, reason: 劳动节}
    fixtures:
      - {class: bench, box: [0.70, 0.60, 0.80, 0.70], name: city bench}
  - id: cafe-licence
    kind: exempt
    polygon: [[0.62, 0.50], [0.75, 0.50], [0.75, 0.70], [0.62, 0.70]]
    classes: [chair, dining table]
"""


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[ConfigMessage] = []

    def publish(self, message: ConfigMessage) -> None:
        self.sent.append(message)


@pytest.fixture
def publisher(server: ReviewServer) -> RecordingPublisher:
    recording = RecordingPublisher()
    server.zones.publisher = recording
    return recording


def report_from_edge(feed: Feed, document: str, **changes: Any) -> str:
    sha = hashlib.sha256(document.encode()).hexdigest()
    fields: dict[str, Any] = {
        "node_id": NODE,
        "camera_id": CAMERA,
        "at": T0,
        "sha256": sha,
        "source": ZoneSource.FILE,
        "path": "/srv/curbwatch/zones/demo.yaml",
        "document": document,
        **changes,
    }
    feed.raw(Topics().camera_zones(NODE, CAMERA), to_json(ZonesReport(**fields)))
    return sha


def check(client: TestClient, csrf: str, document: str, data: Any = None, lang: str = "en") -> Any:
    body: dict[str, Any] = {"document": document}
    if data is not None:
        body["data"] = data
    response = client.post(f"{API}/validate?lang={lang}", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    return response.json()


def save(client: TestClient, csrf: str, document: str) -> Any:
    response = client.put(API, json={"document": document}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_editor_starts_from_the_edges_file_and_says_so(
    client: TestClient, as_admin: str, feed: Feed
) -> None:
    report_from_edge(feed, FULL)
    page = client.get(PAGE + "?lang=en")
    assert page.status_code == 200
    assert "loaded from the edge&#39;s file /srv/curbwatch/zones/demo.yaml" in page.text
    assert "cooldown_s: 10" in page.text and "劳动节" in page.text  # the whole text, in the pane
    zh = client.get(PAGE + "?lang=zh-CN").text
    assert "已载入边缘设备的文件 /srv/curbwatch/zones/demo.yaml" in zh


def test_without_any_document_the_editor_starts_empty_and_says_so(client: TestClient, as_admin: str) -> None:
    page = client.get(PAGE + "?lang=en").text
    assert "starting empty" in page and "camera_id: cam-01" in page


def test_saving_the_edge_document_unchanged_keeps_every_field(
    client: TestClient, as_admin: str, feed: Feed, server: ReviewServer, publisher: RecordingPublisher
) -> None:
    report_from_edge(feed, FULL)
    result = check(client, as_admin, FULL)
    assert result["valid"], result["problems"]
    saved = save(client, as_admin, result["document"])
    stored = server.zones.latest(NODE, CAMERA)
    assert stored is not None and stored["version"] == saved["version"] == 1
    assert parse_zone_document(stored["document"], "stored") == parse_zone_document(FULL, "edge")
    assert publisher.sent[0].cameras[CAMERA] == FULL  # the text itself, comments included


def test_a_drawing_edit_is_written_into_the_text_and_nothing_else_moves(
    client: TestClient, as_admin: str
) -> None:
    data = check(client, as_admin, FULL)["data"]
    data["zones"][0]["polygon"][1] = [0.97, 0.5]
    data["zones"][0]["dwell_s"] = 20
    result = check(client, as_admin, FULL, data)
    assert result["valid"], result["problems"]
    text = result["document"]
    assert "polygon: [[0.60, 0.46], [0.97, 0.5], [0.99, 0.78], [0.63, 0.76]]" in text
    assert "# The demo camera, as the edge's file has it." in text and '"East Fruit 东水果店"' in text
    edited, original = parse_zone_document(text, "edited"), parse_zone_document(FULL, "original")
    assert edited.zones[0].dwell_s == 20 and edited.zones[0].polygon[1] == (0.97, 0.5)
    assert edited.zones[0].schedule == original.zones[0].schedule
    assert edited.zones[0].fixtures == original.zones[0].fixtures
    assert edited.zones[1] == original.zones[1]


def test_a_drawing_edit_on_broken_yaml_asks_for_the_text_first(client: TestClient, as_admin: str) -> None:
    result = check(client, as_admin, "zones: [", {"camera_id": CAMERA, "zones": []})
    assert result["valid"] is False and result["data"] is None and result["document"] == "zones: ["
    assert result["problems"][0]["code"] == "zone_problem_syntax"


def test_the_diff_is_against_what_the_edge_runs(client: TestClient, as_admin: str, feed: Feed) -> None:
    report_from_edge(feed, FULL)
    changed = FULL.replace("dwell_s: 10", "dwell_s: 30")
    diff = client.post(f"{API}/diff", json={"document": changed}, headers={"X-CSRF-Token": as_admin}).json()
    assert diff["against"] == "edge" and diff["changed"] is True
    assert {"kind": "del", "text": "-    dwell_s: 10"} in diff["lines"]
    assert {"kind": "add", "text": "+    dwell_s: 30"} in diff["lines"]
    same = client.post(f"{API}/diff", json={"document": FULL}, headers={"X-CSRF-Token": as_admin}).json()
    assert same["changed"] is False and same["lines"] == []


def test_the_diff_without_an_edge_report_is_against_the_newest_stored_version(
    client: TestClient, as_admin: str, publisher: RecordingPublisher
) -> None:
    empty = client.post(f"{API}/diff", json={"document": FULL}, headers={"X-CSRF-Token": as_admin}).json()
    assert empty["against"] == "nothing" and empty["changed"] is True
    save(client, as_admin, FULL)
    diff = client.post(f"{API}/diff", json={"document": FULL}, headers={"X-CSRF-Token": as_admin}).json()
    assert (diff["against"], diff["version"], diff["changed"]) == ("stored", 1, False)


def test_history_lists_versions_and_revert_publishes_an_old_one_as_new(
    client: TestClient, as_admin: str, server: ReviewServer, publisher: RecordingPublisher, feed: Feed
) -> None:
    save(client, as_admin, FULL)
    save(client, as_admin, FULL.replace("dwell_s: 10", "dwell_s: 30"))
    feed.raw(
        Topics().node_health(NODE),
        json.dumps(
            {
                "schema": "curbwatch.health/3",
                "node_id": NODE,
                "at": "2026-05-01T02:00:05.000000Z",
                "uptime_s": 5.0,
                "outbox_backlog": 0,
                "config_version": 1,
            }
        ).encode(),
    )
    versions = client.get(f"{API}/versions").json()
    assert [(v["version"], v["published_by"], v["applied"]) for v in versions] == [
        (2, "admin", False),
        (1, "admin", True),
    ]
    page = client.get(PAGE + "?lang=zh-CN").text
    assert "恢复到此版本" in page and 'data-version="1"' in page
    assert "2026-05-01 10:00:00" in page  # T0 (02:00 UTC) in Asia/Shanghai
    reverted = client.post(f"{API}/revert", json={"version": 1}, headers={"X-CSRF-Token": as_admin})
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["version"] == 3
    assert publisher.sent[-1].cameras[CAMERA] == FULL
    audit = server.store.read().execute("SELECT what, detail FROM audit_log WHERE what = 'zones.revert'")
    assert [(what, json.loads(detail)) for what, detail in audit] == [
        ("zones.revert", {"version": 3, "reverted_from": 1})
    ]
    missing = client.post(f"{API}/revert", json={"version": 99}, headers={"X-CSRF-Token": as_admin})
    assert missing.status_code == 404
    bad = client.post(f"{API}/revert", json={"version": "one"}, headers={"X-CSRF-Token": as_admin})
    assert bad.status_code == 422


def _zone(**changes: Any) -> dict[str, Any]:
    zone: dict[str, Any] = {
        "id": "east-pavement",
        "kind": "monitored",
        "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]],
        "shop": {"id": "shop-12", "name": "东街12号"},
    }
    return {**zone, **changes}


@pytest.mark.parametrize(
    ("zone", "code", "zh"),
    [
        (
            _zone(polygon=[[0.1, 0.5], [0.9, 0.5], [0.1, 0.95], [0.9, 0.95]]),
            "zone_problem_self_intersection",
            "区域 east-pavement 的边界自相交",
        ),
        (
            _zone(polygon=[[0.1, 0.5], [0.9, 0.5]]),
            "zone_problem_too_few_points",
            "至少需要 3 个顶点，现在只有 2 个",
        ),
        (_zone(dwell_s=0), "zone_problem_at_least", "区域 east-pavement 的停留阈值(秒)不能小于 1"),
        (_zone(cooldown_s=-5), "zone_problem_at_least", "区域 east-pavement 的冷却时间(秒)不能小于 0"),
        (_zone(min_overlap=2.0), "zone_problem_at_most", "区域 east-pavement 的最小重叠比例不能大于 1"),
        (
            _zone(shop=None, kind="monitored"),
            "zone_problem_needs_shop",
            "区域 east-pavement 是监控区，需要指定商户",
        ),
        (_zone(classes=["chiar"]), "zone_problem_unknown_class", "检测器没有“chiar”这一类别"),
        (_zone(colour="red"), "zone_problem_unknown_field", "区域 east-pavement 的colour不是区域文件的字段"),
        (_zone(polygon=[[0.1, 0.5], [1.5, 0.5], [0.9, 0.95]]), "zone_problem_outside_frame", "超出画面范围"),
    ],
)
def test_common_problems_read_in_chinese_and_name_the_zone_and_field(
    client: TestClient, as_admin: str, zone: dict[str, Any], code: str, zh: str
) -> None:
    zone = {k: v for k, v in zone.items() if v is not None}
    document = json.dumps({"camera_id": CAMERA, "zones": [zone]}, ensure_ascii=False)
    problems = check(client, as_admin, document, lang="zh-CN")["problems"]
    errors = [p for p in problems if p["severity"] == "error"]
    assert [p["code"] for p in errors] == [code], errors
    assert zh in errors[0]["text"], errors[0]
    assert "Input should" not in errors[0]["text"] and "Self-intersection" not in errors[0]["text"]
    english = check(client, as_admin, document, lang="en")["problems"]
    assert [p["code"] for p in english if p["severity"] == "error"] == [code]


def test_an_unmapped_problem_falls_back_to_the_validators_words(client: TestClient, as_admin: str) -> None:
    document = json.dumps({"camera_id": CAMERA, "zones": [], "schema_version": 2})
    [problem, *_] = check(client, as_admin, document, lang="zh-CN")["problems"]
    assert problem["code"] is None and problem["text"] == problem["message"]


def test_a_refused_save_answers_readable_problems(client: TestClient, as_admin: str) -> None:
    document = json.dumps({"camera_id": CAMERA, "zones": [_zone(dwell_s=0)]})
    refused = client.put(f"{API}?lang=zh-CN", json={"document": document}, headers={"X-CSRF-Token": as_admin})
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]["problems"]
    assert problem["key"] == "zones[0].dwell_s" and "不能小于 1" in problem["text"]


def test_an_old_incident_is_drawn_with_the_zones_it_was_raised_under(
    server: ReviewServer, feed: Feed, client: TestClient, as_admin: str, publisher: RecordingPublisher
) -> None:
    old_polygon = "[[0.60, 0.46], [0.96, 0.49], [0.99, 0.78], [0.63, 0.76]]"
    sha = report_from_edge(feed, FULL)
    raised = incident_message(zone_id="east-pavement", zones_sha256=sha)
    feed.send(raised)
    by_version = incident_message(zone_id="east-pavement", zones_config_version=1, at=T0 + timedelta(hours=1))
    unknown = incident_message(zone_id="east-pavement")
    save(client, as_admin, FULL)  # v1: the same zones
    save(client, as_admin, FULL.replace(old_polygon, "[[0.1, 0.1], [0.3, 0.1], [0.3, 0.3], [0.1, 0.3]]"))
    feed.send(by_version)
    feed.send(unknown)
    db = server.store.read()

    def drawn(message: Any) -> str:
        [row] = db.query("SELECT * FROM incidents WHERE incident_id = ?", [str(message.incident_id)])
        hit = [shape for shape in incident_zone_polygons(db, row, server.zones) if shape["hit"]]
        return str(hit[0]["points"])

    assert drawn(raised).startswith("600.0,460.0")  # the file the edge ran
    assert drawn(by_version).startswith("600.0,460.0")  # config v1, not v2
    assert drawn(unknown).startswith("100.0,100.0")  # an old node: today's zones
