"""Login, sessions, cookies, rate limit, API tokens."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from review_ui.clock import ManualClock
from review_ui.service import ReviewServer
from tests.review_ui.support import CSRF, PASSWORD, login


def audit_whats(server: ReviewServer) -> list[str]:
    return [row[0] for row in server.store.read().execute("SELECT what FROM audit_log ORDER BY id")]


def post_login(client: TestClient, username: str, password: str, csrf: str | None = None) -> httpx.Response:
    page = client.get("/login")
    token = CSRF.search(page.text)
    assert token
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": token.group(1) if csrf is None else csrf,
        },
        follow_redirects=False,
    )


def test_pages_redirect_to_login_and_api_answers_401(client: TestClient) -> None:
    response = client.get("/queue?status=pending", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/queue")
    assert client.get("/api/v1/incidents").status_code == 401
    assert client.get("/evidence/anything", follow_redirects=False).status_code == 303


def test_login_sets_a_hardened_cookie_and_audits(client: TestClient, server: ReviewServer) -> None:
    response = post_login(client, "admin", PASSWORD)
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "cw_session=" in v)
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert client.get("/queue").status_code == 200
    assert "login.success" in audit_whats(server)
    stored = server.store.read().execute("SELECT token_hash FROM sessions").fetchone()[0]
    assert stored not in cookie  # only the digest is stored


def test_wrong_password_and_unknown_user_fail_alike(client: TestClient, server: ReviewServer) -> None:
    assert post_login(client, "admin", "wrong password").status_code == 401
    assert post_login(client, "nobody", "wrong password").status_code == 401
    assert audit_whats(server).count("login.failure") == 2
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_login_without_csrf_is_refused(client: TestClient) -> None:
    assert post_login(client, "admin", PASSWORD, csrf="forged").status_code == 403


def test_rate_limit_per_ip_and_user(client: TestClient, server: ReviewServer, clock: ManualClock) -> None:
    for _ in range(server.config.login_max_failures):
        assert post_login(client, "admin", "nope nope").status_code == 401
    # Even the right password is refused while blocked...
    assert post_login(client, "admin", PASSWORD).status_code == 429
    # ...but another user from the same address is not.
    assert post_login(client, "viewer", PASSWORD).status_code == 303
    client.cookies.clear()
    clock.advance(server.config.login_window_s + 1)
    assert post_login(client, "admin", PASSWORD).status_code == 303


def test_open_redirect_is_neutralised(client: TestClient) -> None:
    page = client.get("/login")
    token = CSRF.search(page.text)
    assert token
    response = client.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/queue"


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = login(client, "viewer")
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_session_expires(client: TestClient, server: ReviewServer, clock: ManualClock) -> None:
    login(client, "viewer")
    clock.advance(server.config.session_ttl_h * 3600 + 1)
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_disabled_user_loses_access(client: TestClient, server: ReviewServer) -> None:
    login(client, "viewer")
    server.accounts.update_user("viewer", "test", active=False)
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_bearer_token_for_the_api_only(server: ReviewServer) -> None:
    token = server.accounts.create_api_token("inspector", "ci", "admin")
    with TestClient(server.app, base_url="https://testserver") as http:
        headers = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/v1/incidents", headers=headers).status_code == 200
        assert http.get("/api/v1/incidents", headers={"Authorization": "Bearer cwt_wrong"}).status_code == 401
        # tokens authenticate the API, not the cookie-based pages
        assert http.get("/queue", headers=headers, follow_redirects=False).status_code == 303
        # inspector token cannot do admin things
        shop = {"id": "s1", "name": "n", "channel": "email", "target": "a@b.example"}
        assert http.post("/api/v1/shops", json=shop, headers=headers).status_code == 403


def test_locale_from_query_accept_language_and_user(client: TestClient, server: ReviewServer) -> None:
    csrf = login(client, "viewer")
    assert "待审队列" in client.get("/queue").text  # default zh-CN
    assert "Queue" in client.get("/queue?lang=en").text
    client.cookies.delete("cw_lang")
    assert "Queue" in client.get("/queue", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    client.post("/settings/locale", data={"csrf_token": csrf, "locale": "zh-CN"})
    assert "待审队列" in client.get("/queue", headers={"Accept-Language": "en-US"}).text


def test_rotating_addresses_does_not_reset_the_account_limit(
    clock: ManualClock, server: ReviewServer
) -> None:
    """Issue 10 case 4: the per-account count holds across client addresses (X-Forwarded-For
    rotation), and one address spraying many accounts is stopped too."""
    from review_ui.auth import LoginLimiter

    limiter = LoginLimiter(server.store, clock, max_failures=5, window_s=300, max_client_failures=8)
    for n in range(5):
        assert not limiter.blocked(f"10.0.0.{n}", "admin")
        limiter.failed(f"10.0.0.{n}", "admin")
    assert limiter.blocked("10.0.0.99", "admin")
    for n in range(8):
        assert not limiter.blocked("192.0.2.7", f"user{n}")
        limiter.failed("192.0.2.7", f"user{n}")
    assert limiter.blocked("192.0.2.7", "someone-else")
    assert not limiter.blocked("192.0.2.8", "someone-else")
    clock.advance(301)
    assert not limiter.blocked("10.0.0.99", "admin") and not limiter.blocked("192.0.2.7", "x")


def test_failed_logins_count_across_review_processes(clock: ManualClock, server: ReviewServer) -> None:
    """Issue 16: two review servers behind one proxy share the count (the database's), so a
    guesser cannot double the attempts by landing on the other process."""
    from review_ui.auth import LoginLimiter
    from review_ui.db import Store

    other_store = Store(server.config.database)
    try:
        here = LoginLimiter(server.store, clock, max_failures=4, window_s=300)
        there = LoginLimiter(other_store, clock, max_failures=4, window_s=300)
        for n in range(4):
            (here if n % 2 else there).failed(f"10.0.0.{n}", "admin")
        assert here.blocked("10.0.0.9", "admin") and there.blocked("10.0.0.9", "admin")
        there.succeeded("10.0.0.9", "admin")
        assert not here.blocked("10.0.0.9", "admin")
        clock.advance(301)
        here.failed("10.0.0.1", "viewer")  # prunes what left the window
        rows = server.store.read().execute("SELECT kind, subject FROM login_failures ORDER BY kind")
        assert [tuple(row) for row in rows] == [("ip", "10.0.0.1"), ("user", "viewer")]
    finally:
        other_store.close()


def test_forwarded_headers_are_not_believed_unless_a_proxy_is_configured(server: ReviewServer) -> None:
    config = server._uvicorn().config
    assert config.proxy_headers is False
    assert not config.forwarded_allow_ips


def test_weak_passwords_are_refused_everywhere(server: ReviewServer) -> None:
    from review_ui.auth import Role, UserError

    accounts = server.context.accounts
    for weak in ("12345678", "password", " " * 8, "a" * 14, "password1234", "QwertyUiop123", "newuser-2024x"):
        with pytest.raises(UserError):
            accounts.create_user("newuser", weak, Role.VIEWER, "admin")
    accounts.create_user("newuser", "tea by the river at dawn", Role.VIEWER, "admin")
    with pytest.raises(UserError, match="at least 12"):
        accounts.reset_password("newuser", "short", "admin")


NEW_PASSWORD = "a walk along the min river"


def test_a_user_changes_their_own_password_and_the_audit_log_says_so(
    client: TestClient, server: ReviewServer
) -> None:
    csrf = login(client, "viewer")
    page = client.get("/account/password?lang=zh-CN")
    assert page.status_code == 200 and "修改密码" in page.text
    wrong = client.post(
        "/account/password",
        data={"current": "not it", "new": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf_token": csrf},
    )  # fmt: skip
    assert wrong.status_code == 422
    differ = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": NEW_PASSWORD, "repeat": "another thing", "csrf_token": csrf},
    )  # fmt: skip
    assert differ.status_code == 422
    done = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    assert client.get("/queue", follow_redirects=False).status_code == 303  # the session ended
    assert server.context.accounts.verify("viewer", PASSWORD) is None
    assert server.context.accounts.verify("viewer", NEW_PASSWORD) is not None
    audit = server.store.read().execute("SELECT what FROM audit_log WHERE target = 'viewer'")
    actions = [row[0] for row in audit]
    assert "user.password_change" in actions
    server.context.accounts.reset_password("viewer", PASSWORD, "admin")  # for the other tests' users_db
