"""Shops edited in place with field messages; users: password reset and API-token revocation."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from review_ui.service import ReviewServer
from tests.review_ui.support import PASSWORD, login

SHOP = {
    "id": "shop-12",
    "name": "东街12号",
    "address": "东街12号",
    "operator": "王老板",
    "contact": "138",
    "channel": "email",
    "target": "owner@shop.example",
    "locale": "zh-CN",
}


def audit_rows(server: ReviewServer, what: str) -> list[tuple[str, str, dict[str, object]]]:
    rows = server.store.read().execute("SELECT who, target, detail FROM audit_log WHERE what = ?", [what])
    return [(who, target, json.loads(detail)) for who, target, detail in rows]


def test_edit_form_is_prefilled_and_updates_in_place(client: TestClient, server: ReviewServer) -> None:
    csrf = login(client, "admin")
    assert client.post("/shops", data={**SHOP, "csrf_token": csrf}, follow_redirects=False).status_code == 303
    listing = client.get("/shops").text
    assert 'href="/shops/shop-12/edit#shop-form"' in listing
    form = client.get("/shops/shop-12/edit", params={"lang": "en"}).text
    assert 'action="/shops/shop-12"' in form and 'name="id" value="shop-12" readonly' in form
    assert 'value="王老板"' in form and 'value="owner@shop.example"' in form
    assert '<option value="email" selected>' in form
    changed = {**SHOP, "name": "东街12号便利店", "channel": "webhook", "target": "https://hook.example/x"}
    response = client.post("/shops/shop-12", data={**changed, "csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    stored = server.context.shops.get("shop-12")
    assert stored is not None and stored["name"] == "东街12号便利店" and stored["channel"] == "webhook"
    assert [(w, t) for w, t, _ in audit_rows(server, "shop.update")] == [("admin", "shop-12")]
    # the id in the path is the key: a different id in the form cannot rename or overwrite
    moved = {**changed, "id": "shop-99", "name": "别的"}
    assert (
        client.post("/shops/shop-12", data={**moved, "csrf_token": csrf}, follow_redirects=False).status_code
        == 303
    )
    assert server.context.shops.get("shop-99") is None
    assert client.post("/shops/nope", data={**SHOP, "csrf_token": csrf}).status_code == 404
    assert client.get("/shops/nope/edit").status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "message_en"),
    [
        ({"id": "bad id!"}, "id", "1-64 letters, digits"),
        ({"name": "  "}, "name", "Name is required"),
        ({"address": "x" * 201}, "address", "At most 200 characters"),
        ({"channel": "fax"}, "channel", "Choose email, webhook or mqtt"),
        ({"target": "not-an-address"}, "target", "must be one e-mail address"),
        ({"channel": "webhook", "target": "ftp://x"}, "target", "http:// or https:// URL"),
        ({"channel": "mqtt", "target": "shops/#"}, "target", "without + or #"),
        ({"locale": "fr"}, "locale", "Choose zh-CN or en"),
    ],
)
def test_validation_messages_name_the_field_and_keep_the_input(
    client: TestClient, server: ReviewServer, change: dict[str, str], field: str, message_en: str
) -> None:
    csrf = login(client, "admin")
    server.context.accounts.set_locale("admin", "en")
    response = client.post("/shops", data={**SHOP, **change, "csrf_token": csrf})
    assert response.status_code == 422
    assert f'id="err-{field}"' in response.text and message_en in response.text
    assert "Please correct the marked fields." in response.text
    assert 'value="王老板"' in response.text  # what was typed is still there
    assert server.context.shops.get("shop-12") is None


def test_validation_messages_in_chinese_and_on_edit(client: TestClient, server: ReviewServer) -> None:
    csrf = login(client, "admin")
    client.post("/shops", data={**SHOP, "csrf_token": csrf})
    again = client.post("/shops", data={**SHOP, "csrf_token": csrf}, params={"lang": "zh-CN"})
    assert again.status_code == 422 and "该 ID 的商户已存在" in again.text
    bad = client.post("/shops/shop-12", data={**SHOP, "target": "x", "csrf_token": csrf})
    assert bad.status_code == 422 and 'action="/shops/shop-12"' in bad.text
    assert "目标须为一个电子邮件地址" in bad.text
    stored = server.context.shops.get("shop-12")
    assert stored is not None and stored["target"] == "owner@shop.example"


def test_admin_resets_a_password(client: TestClient, server: ReviewServer) -> None:
    with TestClient(server.app, base_url="https://testserver") as viewer:
        login(viewer, "viewer")
        assert viewer.get("/queue", follow_redirects=False).status_code == 200
        csrf = login(client, "admin")
        short = client.post("/users/viewer/password", data={"password": "short", "csrf_token": csrf})
        assert short.status_code == 422 and "密码至少需要 12 个字符" in short.text
        response = client.post(
            "/users/viewer/password", data={"password": "a brand new secret", "csrf_token": csrf}
        )
        assert response.status_code == 200 and "已重置 viewer 的密码" in response.text
        assert viewer.get("/queue", follow_redirects=False).status_code == 303  # session ended
    assert server.accounts.verify("viewer", PASSWORD) is None
    assert server.accounts.verify("viewer", "a brand new secret") is not None
    assert [(w, t) for w, t, _ in audit_rows(server, "user.password_reset")] == [("admin", "viewer")]
    assert (
        client.post(
            "/users/ghost/password", data={"password": "long enough 1", "csrf_token": csrf}
        ).status_code
        == 404
    )


def test_admin_revokes_an_api_token(client: TestClient, server: ReviewServer) -> None:
    token = server.accounts.create_api_token("inspector", "tablet", "test")
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(server.app, base_url="https://testserver") as api:
        assert api.get("/api/v1/incidents", headers=bearer).status_code == 200
        csrf = login(client, "admin")
        page = client.get("/users").text
        token_id = server.accounts.list_api_tokens()[0]["id"]
        action = f'action="/users/inspector/tokens/{token_id}/revoke"'
        assert action in page and "tablet" in page
        # the token belongs to inspector: revoking it under another user name is not found
        assert (
            client.post(f"/users/viewer/tokens/{token_id}/revoke", data={"csrf_token": csrf}).status_code
            == 404
        )
        assert api.get("/api/v1/incidents", headers=bearer).status_code == 200
        response = client.post(
            f"/users/inspector/tokens/{token_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert response.status_code == 303
        assert api.get("/api/v1/incidents", headers=bearer).status_code == 401
    again = client.post(
        f"/users/inspector/tokens/{token_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert again.status_code == 303  # idempotent
    assert action not in client.get("/users").text
    revokes = audit_rows(server, "token.revoke")
    assert len(revokes) == 1 and revokes[0][:2] == ("admin", "inspector")
    assert revokes[0][2]["name"] == "tablet" and token not in json.dumps(revokes)


def test_audit_paging_stops_at_the_last_page_and_leads_back(client: TestClient, server: ReviewServer) -> None:
    with server.store.write() as db:
        for n in range(250):
            row = ["x", "test.row", str(n), "2026-05-01T00:00:00Z"]
            db.execute("INSERT INTO audit_log (who, what, target, at) VALUES (?, ?, ?, ?)", row)
    login(client, "admin")
    first = client.get("/audit").text
    assert "/audit?before=" in first and 'href="/audit"' not in first.split('class="pages"')[1]
    before = first.split("/audit?before=")[1].split('"')[0]
    second = client.get(f"/audit?before={before}").text
    pager = second.split('class="pages"')[1]
    assert 'href="/audit"' in pager and "/audit?before=" not in pager  # the end, with a way back
