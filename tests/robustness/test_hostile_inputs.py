"""Every route, fed malformed, oversized and hostile input, answers a 4xx problem+json —
never a 500 — whether the caller is anonymous or an admin.

The route list comes from the OpenAPI schema, so a new route is covered the day it lands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

HOSTILE_SEGMENTS = [
    "..",
    "%2e%2e",
    "%00",
    "%ff",
    "a%0Ab",
    "x" * 3000,
    "' OR 1=1 --",
    "-1",
    "99999999999999999999999",
    "%E2%80%AE",  # right-to-left override
]

HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("not json", b"this is not json"),
    ("truncated", b'{"id": '),
    ("array", b"[]"),
    ("null", b"null"),
    (
        "wrong types",
        json.dumps(
            {
                "id": 5,
                "version": [],
                "name": {},
                "schedule": "x",
                "ids": "all",
                "url": 7,
                "events": None,
            }
        ).encode(),
    ),
    ("invalid utf-8", b'{"id": "\xff\xfe"}'),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("huge string", json.dumps({"id": "a" * 2_000_000, "version": "a" * 100_000}).encode()),
    ("lone surrogate", b'{"id": "\\ud800/x", "version": "\\udfff"}'),
    (
        "nul in strings",
        json.dumps(
            {
                "id": "a\x00/b",
                "version": "v\x00",
                "name": "\x00",
                "email": "a\x00@b.c",
                "reason": "\x00",
                "answers": {"k\x00": "v"},
            }
        ).encode(),
    ),
]


def operations(app: FastAPI) -> Iterator[tuple[str, str]]:
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            yield method.upper(), path


def fill(path: str, segment: str) -> str:
    return re.sub(r"\{[^}]+\}", segment, path)


def assert_problem(resp: Any, what: str) -> None:
    assert resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    if resp.status_code >= 400 and resp.request.method != "HEAD":
        assert resp.headers["content-type"].startswith("application/problem+json"), what
        body = resp.json()
        assert body["code"], what
        assert body["detail"], what


@pytest.fixture
def lenient_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("as_admin", [False, True], ids=["anonymous", "admin"])
def test_hostile_path_segments_never_cause_a_server_error(
    lenient_client: TestClient, app: FastAPI, admin_headers: dict[str, str], as_admin: bool
) -> None:
    headers = admin_headers if as_admin else {}
    for method, path in operations(app):
        for segment in HOSTILE_SEGMENTS:
            url = fill(path, segment)
            resp = lenient_client.request(method, url, headers=headers, content=b"{}")
            assert_problem(resp, f"{method} {url[:120]}")


@pytest.mark.parametrize("label", [label for label, _ in HOSTILE_BODIES])
def test_hostile_bodies_never_cause_a_server_error(
    lenient_client: TestClient, app: FastAPI, admin_headers: dict[str, str], label: str
) -> None:
    body = dict(HOSTILE_BODIES)[label]
    headers = {**admin_headers, "content-type": "application/json"}
    for method, path in operations(app):
        if method not in ("POST", "PUT", "PATCH"):
            continue
        url = fill(path, "x")
        resp = lenient_client.request(method, url, headers=headers, content=body)
        assert_problem(resp, f"{method} {url} with {label}")


def test_garbage_credentials_are_refused_cleanly(lenient_client: TestClient, app: FastAPI) -> None:
    for value in [
        "Bearer",
        "Bearer ",
        "Basic Zm9vOmJhcg==",
        "Bearer wg_" + "a" * 43,
        "Bearer " + "x" * 20_000,
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "Bearer \u00e9",
    ]:
        for method, path in operations(app):
            url = fill(path, "x")
            try:
                resp = lenient_client.request(method, url, headers={"Authorization": value})
            except UnicodeEncodeError:
                continue  # the HTTP client itself refuses non-latin-1 header values
            assert_problem(resp, f"{method} {url} with Authorization {value[:30]!r}")


def test_nul_in_a_url_is_refused_with_its_own_code(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for url in [
        "/v1/models/acme/x%00",
        "/v1/models?cursor=%00",
        "/v1/models/acme/x/releases/v1/files/model%00.safetensors",
    ]:
        r = client.put(url, content=b"x", headers=admin_headers)
        assert r.status_code == 422
        assert r.json()["code"] == "nul_in_url"
        assert "NUL" in r.json()["detail"]


def test_nul_in_a_body_names_the_field(client: TestClient, admin_headers: dict[str, str]) -> None:
    r = client.post(
        "/v1/models", json={"id": "acme/x", "display_name": "a\x00"}, headers=admin_headers
    )
    assert r.status_code == 422
    assert "display_name contains a NUL character" in r.json()["detail"]
    assert client.get("/v1/models/acme/x", headers=admin_headers).status_code == 404
