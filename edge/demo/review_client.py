"""A small client for the review server's web login and JSON API, as a browser would use them.

The demo uses it to register the demo shop (as the admin) and to follow the queue;
the demo's test uses it to confirm an incident as the inspector. It speaks only HTTP:
log in through the login form (with its CSRF cookie), read the session's CSRF token
from the queue page, then call /api/v1 with the session cookie and X-CSRF-Token.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SESSION_CSRF = re.compile(r'data-csrf="([^"]+)"')


class ReviewHttpError(Exception):
    """The review server answered with an error, or not at all."""


def wait_until_up(base_url: str, timeout_s: float, is_alive: Any = None) -> None:
    """Poll GET /login until it answers; `is_alive()` may raise to abort early (child died)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/login", timeout=2.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        if is_alive is not None:
            is_alive()
        time.sleep(0.2)
    raise ReviewHttpError(f"{base_url} did not answer within {timeout_s:.0f} s ({last})")


class ReviewSession:
    """One logged-in user."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.csrf = ""

    def _open(self, request: urllib.request.Request) -> tuple[int, bytes]:
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise ReviewHttpError(f"{request.full_url}: {exc}") from exc

    def page(self, path: str) -> str:
        status, body = self._open(urllib.request.Request(self.base_url + path))
        if status != 200:
            raise ReviewHttpError(f"GET {path}: HTTP {status}")
        return body.decode("utf-8")

    def login(self, username: str, password: str) -> None:
        found = _LOGIN_CSRF.search(self.page("/login"))
        if found is None:
            raise ReviewHttpError("the login page has no csrf_token field")
        form = {"username": username, "password": password, "csrf_token": found.group(1), "next": "/queue"}
        request = urllib.request.Request(
            self.base_url + "/login",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        status, body = self._open(request)  # 303 -> /queue, followed by urllib
        if status != 200:
            raise ReviewHttpError(f"login as {username}: HTTP {status}")
        token = _SESSION_CSRF.search(body.decode("utf-8"))
        if token is None:
            raise ReviewHttpError(f"login as {username} did not reach the queue page")
        self.csrf = token.group(1)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json", "X-CSRF-Token": self.csrf}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"{self.base_url}/api/v1{path}", data=data, method=method, headers=headers
        )
        status, raw = self._open(request)
        if status >= 400:
            raise ReviewHttpError(f"{method} {path}: HTTP {status}: {raw.decode('utf-8', 'replace')[:300]}")
        return json.loads(raw) if raw else None

    def incidents(self, status: str = "pending") -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"status": status})
        return list(self.api("GET", f"/incidents?{query}")["incidents"])

    def confirm(self, incident_id: str, note: str = "", cleared_action: str | None = None) -> dict[str, Any]:
        """cleared_action `remind` or `close` answers the server's question for an incident the
        edge already reports cleared (without it, such a confirmation is refused with 409)."""
        quoted = urllib.parse.quote(incident_id, safe="")
        body: dict[str, Any] = {"verdict": "confirmed", "note": note}
        if cleared_action is not None:
            body["cleared_action"] = cleared_action
        result: dict[str, Any] = self.api("POST", f"/incidents/{quoted}/verdict", body)
        return result
