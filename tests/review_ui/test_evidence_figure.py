"""The incident page's evidence: real size, numbered objects named in the page's language, close-ups."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient

from review_ui.evidence_view import crop_box
from tests.review_ui.conftest import Feed
from tests.review_ui.evidence_support import LEUVEN_WH, leuven_incident
from tests.review_ui.support import incident_message


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def legend(page: str) -> list[str]:
    """The legend entries as text: '1 自行车 0.62'."""
    entries = re.findall(r'<a href="[^"]+" class="evidence-object" data-object="\d+">(.*?)</a>', page, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", entry).split()) for entry in entries]


def test_the_page_lists_the_objects_as_numbered_in_the_picture_in_chinese(
    client: TestClient, feed: Feed, as_viewer: str, leuven_jpg: Path
) -> None:
    iid = feed.send(leuven_incident(leuven_jpg))
    page = client.get(f"/incidents/{iid}?lang=zh-CN").text
    # Tag order is confidence order; the bicycle's second box (same track) is not listed.
    assert legend(page) == ["1 自行车 0.62", "2 椅子 0.45", "3 自行车 0.34"]
    assert '<h3 class="evidence-legend-title">画面中的物体</h3>' in page
    assert "点按编号或方框，放大查看该物体。" in page
    english = client.get(f"/incidents/{iid}?lang=en").text
    assert legend(english) == ["1 bicycle 0.62", "2 chair 0.45", "3 bicycle 0.34"]
    assert "Objects in the picture" in english and "画面" not in english
    # The picture's own size, so the browser never stretches it; a box per object over it.
    width, height = LEUVEN_WH
    assert f'id="evidence" width="{width}" height="{height}"' in page
    assert page.count('class="evidence-box"') == 3
    assert f'href="/evidence/{iid}/objects/2" class="evidence-box" data-object="2"' in page
    assert '<link rel="stylesheet" href="/static/evidence.css">' in page
    assert '<script src="/static/evidence.js" defer></script>' in page


def test_the_overlay_boxes_are_the_ones_burnt_into_the_picture(
    client: TestClient, feed: Feed, as_viewer: str, leuven_jpg: Path
) -> None:
    message = leuven_incident(leuven_jpg)
    iid = feed.send(message)
    page = client.get(f"/incidents/{iid}").text
    rects = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)">', page)
    assert message.evidence_objects is not None
    expected = [o.bbox for o in message.evidence_objects]
    got = [
        (x / 1000, y / 1000, (x + w) / 1000, (y + h) / 1000) for x, y, w, h in (map(float, r) for r in rects)
    ]
    assert np.allclose(got, expected, atol=1e-3)
    # ... and the picture really has a red box edge where the first rect's left side is.
    picture = decode(client.get(f"/evidence/{iid}").content)
    width, height = LEUVEN_WH
    x1, y1, _, y2 = expected[0]
    column = picture[round(y1 * height) + 10 : round(y2 * height) - 10, round(x1 * width)]
    assert np.median(column[:, 2]) > 180 and np.median(column[:, 1]) < 90


def test_a_close_up_is_cut_from_the_stored_picture_at_its_own_resolution(
    client: TestClient, feed: Feed, as_viewer: str, leuven_jpg: Path
) -> None:
    message = leuven_incident(leuven_jpg)
    iid = feed.send(message)
    whole = decode(client.get(f"/evidence/{iid}").content)
    response = client.get(f"/evidence/{iid}/objects/2")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    close_up = decode(response.content)
    assert message.evidence_objects is not None
    left, top, right, bottom = crop_box(message.evidence_objects[1].bbox, LEUVEN_WH)
    assert close_up.shape[:2] == (bottom - top, right - left)
    difference = np.abs(close_up.astype(np.int32) - whole[top:bottom, left:right].astype(np.int32))
    assert difference.mean() < 4  # the same pixels, once more through JPEG
    for bad in ("0", "4", "-1"):
        assert client.get(f"/evidence/{iid}/objects/{bad}").status_code == 404
    assert client.get(f"/evidence/{iid}/objects/two").status_code == 422
    assert client.get("/evidence/no-such-incident/objects/1").status_code == 404


def test_close_ups_need_the_same_login_as_the_picture(
    client: TestClient, feed: Feed, leuven_jpg: Path
) -> None:
    iid = feed.send(leuven_incident(leuven_jpg))
    anonymous = client.get(f"/evidence/{iid}", follow_redirects=False).status_code
    assert anonymous in (302, 303, 401)
    assert client.get(f"/evidence/{iid}/objects/1", follow_redirects=False).status_code == anonymous


def test_an_older_picture_without_numbers_is_shown_plainly(
    client: TestClient, feed: Feed, as_viewer: str
) -> None:
    iid = feed.send(incident_message())  # evidence, no evidence_objects: a node before incident/3's
    page = client.get(f"/incidents/{iid}?lang=zh-CN").text
    assert 'id="evidence" width="320" height="180"' in page  # support.jpeg()'s size, from the header
    assert legend(page) == [] and "evidence-box" not in page
    assert "此图片未附带物体编号" in page
    assert client.get(f"/evidence/{iid}/objects/1").status_code == 404
    # The JSON view carries the objects too.
    assert client.get(f"/api/v1/incidents/{iid}").json()["incident"]["evidence_objects"] is None


def test_a_page_without_evidence_says_so(client: TestClient, feed: Feed, as_viewer: str) -> None:
    iid = feed.send(incident_message(evidence=False))
    page = client.get(f"/incidents/{iid}?lang=zh-CN").text
    assert "无证据图片。" in page and "evidence-figure" not in page


def test_the_api_returns_the_objects_as_numbered(
    client: TestClient, feed: Feed, as_viewer: str, leuven_jpg: Path
) -> None:
    iid = feed.send(leuven_incident(leuven_jpg))
    objects = client.get(f"/api/v1/incidents/{iid}").json()["incident"]["evidence_objects"]
    assert [(o["label"], o["confidence"]) for o in objects] == [
        ("bicycle", 0.62),
        ("chair", 0.45),
        ("bicycle", 0.34),
    ]
