"""Hypothesis-driven requests built from the OpenAPI document: no input gives a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from review_ui.service import ReviewServer
from tests.review_ui.conftest import Feed
from tests.review_ui.support import incident_message, login

TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            "..",
            "../../etc/passwd",
            "' OR 1=1 --",
            "shop-12",
            "%00",
            "pending",
            "2026-05-01",
            "\u202e",
            "0",
            "-1",
        ]
    ),
)
VALUE = st.one_of(
    TEXT,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def body_strategy(spec: dict[str, Any], op: dict[str, Any]) -> st.SearchStrategy[Any]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return st.none()
    ref = content["schema"].get("$ref", "")
    schema = spec["components"]["schemas"].get(ref.split("/")[-1], {})
    keys = list(schema.get("properties", {})) or ["x"]
    return st.one_of(st.dictionaries(st.sampled_from([*keys, "extra"]), VALUE, max_size=len(keys) + 1), VALUE)


def test_openapi_operations_never_fail_with_5xx(client: TestClient, server: ReviewServer, feed: Feed) -> None:
    feed.send(incident_message())
    csrf = login(client, "admin")
    spec = client.get("/api/v1/openapi.json").json()
    ops = operations(spec)
    assert len(ops) >= 10

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(ops), st.data())
    def one(op_tuple: tuple[str, str, dict[str, Any]], data: st.DataObject) -> None:
        method, path, op = op_tuple
        params: dict[str, Any] = {}
        for parameter in op.get("parameters", []):
            value = data.draw(TEXT)
            if parameter["in"] == "path":
                path = path.replace("{" + parameter["name"] + "}", quote(value, safe="") or "x")
            elif data.draw(st.booleans()):
                params[parameter["name"]] = value
        body = data.draw(body_strategy(spec, op))
        kwargs: dict[str, Any] = {"params": params, "headers": {"X-CSRF-Token": csrf}}
        if body is not None:
            # Encoded here, not by httpx: Python's JSON (and so the server's parser) accepts the
            # NaN / Infinity literals that httpx refuses to send, and a client may send them.
            kwargs["content"] = json.dumps(body, allow_nan=True)
            kwargs["headers"]["Content-Type"] = "application/json"
        response = client.request(method, path, **kwargs)
        assert response.status_code < 500, (method, path, params, body, response.text)

    one()
    # Deterministically too: the non-finite literals Python's JSON parser accepts.
    for method, path, op in ops:
        if "requestBody" not in op:
            continue
        concrete = path.replace("{", "").replace("}", "")
        for raw in ("NaN", "Infinity", '{"document": -Infinity, "verdict": NaN}'):
            headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
            response = client.request(method, concrete, content=raw, headers=headers)
            assert response.status_code < 500, (method, concrete, raw, response.text)
