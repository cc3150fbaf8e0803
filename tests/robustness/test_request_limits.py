"""Requests are bounded before they are read: a body past its route's bound is a 413 (before
authentication, without reading it when its length is declared), and ``weightgate serve``
answers a request head past 64 KiB with a 431 instead of buffering it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.http_limits import DEFAULT_BODY_LIMIT, body_limit
from app.http_server import MAX_HEAD_BYTES
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import live_server


def big_json(size: int) -> bytes:
    return json.dumps({"model": "acme/x", "pad": "a" * size}).encode()


def test_a_body_past_its_bound_is_refused_before_authentication(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wg_" + "a" * 43}):
        r = client.post(
            "/v1/tokens",
            content=big_json(2 * DEFAULT_BODY_LIMIT),
            headers={**headers, "content-type": "application/json"},
        )
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "payload_too_large"


def test_a_body_without_a_declared_length_is_cut_off_at_its_bound(client: TestClient) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MiB offered, in 64 KiB chunks
            sent += 1
            yield b"a" * 65536

    r = client.post("/v1/register", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "payload_too_large"


def test_each_route_has_its_bound() -> None:
    assert body_limit("POST", "/v1/tokens") == DEFAULT_BODY_LIMIT
    assert body_limit("POST", "/v1/oauth/token") == 4096
    assert body_limit("POST", "/v1/models") == 4 * 1024 * 1024  # license texts are long
    assert body_limit("PATCH", "/v1/models/acme/x") == 4 * 1024 * 1024
    # Uploads stream under WEIGHTGATE_MAX_UPLOAD_BYTES, checked by their route.
    assert body_limit("PUT", "/v1/models/acme/x/releases/v1/files/a/b.bin") is None


def test_a_long_license_still_fits(client: TestClient, admin_headers: dict[str, str]) -> None:
    body = {"id": "acme/long", "license": "\u00e9\u4e2d" * 99_000}  # escaped: ~1.2 MB of JSON
    r = client.post("/v1/models", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text[:300]


@pytest.mark.slow
@pytest.mark.own_database
def test_serve_bounds_request_heads_and_refuses_declared_bodies_unread(tmp_path: Path) -> None:
    with fresh_database(tmp_path, kind="sqlite", label="limits") as db_url:
        env = {"WEIGHTGATE_DATABASE_URL": db_url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}
        with live_server(env, tmp=tmp_path) as server:
            host, port = server.url.removeprefix("http://").split(":")
            # A 30 MB header: refused once the head passes the bound, not read to its end.
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
                started = time.monotonic()
                try:
                    for _ in range(30 * 16):
                        s.sendall(b"a" * 65536)
                except OSError:
                    pass  # the server closed the connection while we were still sending
                answer = s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
            assert b"request_head_too_large" in answer
            assert time.monotonic() - started < 10
            # A 100 MB body declared by Content-Length: refused before any of it is sent.
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(
                    b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 104857600\r\n\r\n"
                )
                answer = s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            # The server is still there for everyone else, and a head under the bound is fine.
            r = httpx.get(server.url + "/healthz", headers={"X-Fine": "a" * (MAX_HEAD_BYTES // 2)})
            assert r.status_code == 200
