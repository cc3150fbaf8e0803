"""No header carries unchecked input: a control character in a URL never reaches a response
header, where the server would refuse to send it and drop the connection without an answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.http_guard import drop_unsafe_headers
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import live_server

# What h11 (uvicorn) accepts in a header value: visible characters, spaces and tabs.
SENDABLE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
HOSTILE_IDS = ["a%01/b", "a%1b%5b31m/b", "a%7f/b", "a%0d%0aX-Injected:%201/b", "a%c2%85/b"]


def assert_sendable(resp: Any) -> None:
    for name, value in resp.headers.items():
        assert SENDABLE.match(value), f"{name}: {value!r}"


@pytest.mark.parametrize("repo_id", HOSTILE_IDS)
def test_control_characters_in_a_repo_id_never_reach_a_header(
    client: TestClient, repo_id: str
) -> None:
    for url in (f"/api/models/{repo_id}", f"/{repo_id}/resolve/main/x.bin"):
        r = client.get(url)
        assert r.status_code == 404, r.text
        assert r.headers["x-error-code"] == "RepoNotFound"
        assert_sendable(r)


def test_an_unsendable_header_is_dropped_and_the_rest_goes_out() -> None:
    message = {
        "type": "http.response.start",
        "status": 404,
        "headers": [(b"x-ok", b"fine"), (b"x-bad", b"a\x01b"), (b"x-crlf", b"a\r\nb: c")],
    }
    drop_unsafe_headers(message)
    assert message["headers"] == [(b"x-ok", b"fine")]


@pytest.mark.slow
@pytest.mark.own_database
def test_a_live_server_answers_every_hostile_repo_id(tmp_path: Path) -> None:
    with fresh_database(tmp_path, kind="sqlite", label="hdr") as db_url:
        env = {"WEIGHTGATE_DATABASE_URL": db_url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}
        with live_server(env, tmp=tmp_path) as server, httpx.Client(timeout=10) as c:
            for repo_id in HOSTILE_IDS:
                for method, path in (
                    ("GET", f"/api/models/{repo_id}"),
                    ("HEAD", f"/{repo_id}/resolve/main/x.bin"),
                ):
                    r = c.request(method, server.url + path)
                    assert r.status_code == 404
                    assert r.headers["x-error-code"] == "RepoNotFound"
