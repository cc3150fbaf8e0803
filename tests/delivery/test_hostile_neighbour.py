"""30 good downloads and one hostile one, at once, against a live server: the 30 are served.

The hostile request (a Range header with 5,000 digits) used to raise in ``int()`` while its
batch was decided, and the batch handed that exception to every request in it: 24-29 of the
good downloads got a 500. It runs on both databases (PostgreSQL with two workers, SQLite with
the one it allows); it makes its own, so it runs once, in the PostgreSQL pass.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import at_once, create_user, live_server, publish_over_http

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

DATA = bytes(range(256)) * 64
GOOD = 30


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_one_hostile_range_among_thirty_downloads_harms_none(tmp_path: Path, kind: str) -> None:
    workers = 2 if kind == "postgresql" else 1
    with fresh_database(tmp_path, kind=kind, label="crowd") as db_url:
        env = {"WEIGHTGATE_DATABASE_URL": db_url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}
        with live_server(env, tmp=tmp_path, workers=workers) as server:
            admin = create_user(server, "ops@example.org", "admin")
            publish_over_http(
                server.url,
                admin,
                "acme/crowd",
                components={"w": []},
                files={"w.bin": ("w", DATA)},
            )
            issued = httpx.post(
                server.url + "/v1/tokens",
                json={"model": "acme/crowd"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            token = issued.json()["token"]
            url = server.url + "/v1/files/acme/crowd/v1/w.bin"
            hostile = threading.Lock()
            sent_hostile: list[bool] = []

            def send(c: httpx.Client) -> httpx.Response:
                with hostile:
                    first = not sent_hostile
                    sent_hostile.append(True)
                headers = {"Authorization": f"Bearer {token}"}
                if first:
                    headers["Range"] = "bytes=" + "9" * 5000 + "-"
                return c.get(url, headers=headers)

            responses = at_once(GOOD + 1, send)
    bodies = Counter((r.status_code, r.content == DATA) for r in responses)
    # Every request got the whole file: the hostile Range is too long to be one range, and is
    # ignored as RFC 9110 allows.
    assert bodies == {(200, True): GOOD + 1}, bodies
