"""``make run PORT=18100``: with no ``WEIGHTGATE_PUBLIC_URL``, the download URLs a server hands
out name the port it serves (#17 item 5), and ``make run`` installs no test extras."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.settings import served_url
from tests.fixtures.servers import ROOT, create_user, live_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]


def test_download_urls_follow_the_served_port_when_no_public_url_is_set(tmp_path: Path) -> None:
    # No WEIGHTGATE_DATABASE_URL either: the embedded SQLite default of make run.
    env: dict[str, str | None] = {"WEIGHTGATE_PUBLIC_URL": None, "WEIGHTGATE_DATABASE_URL": None}
    with live_server(env, tmp=tmp_path) as server:
        assert "WEIGHTGATE_PUBLIC_URL" not in server.env
        admin = {"Authorization": f"Bearer {create_user(server, 'a@example.org', 'admin')}"}
        user = {"Authorization": f"Bearer {create_user(server, 'r@example.org')}"}
        base = f"{server.url}/v1/models/acme/port"
        opened = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for method, url, body in [
                ("POST", "/v1/models", {"id": "acme/port", "display_name": "Port"}),
                ("POST", f"{base}/releases", {"version": "v1"}),
                (
                    "POST",
                    f"{base}/releases/v1/components",
                    {"name": "config", "schedule": [{"tier": "open", "at": opened}]},
                ),
            ]:
                assert http.request(method, url, json=body, headers=admin).status_code == 201
            put = http.put(
                f"{base}/releases/v1/files/config.json",
                params={"component": "config"},
                content=b"{}",
                headers=admin,
            )
            assert put.status_code == 201, put.text
            assert http.post(f"{base}/releases/v1/publish", headers=admin).status_code == 200
            token = http.post("/v1/tokens", json={"model": "acme/port"}, headers=user)
            assert token.status_code == 201, token.text
            # The file and its component's signature file (#22).
            (url,) = [
                f["url"] for f in token.json()["files"] if not f["path"].startswith("signatures/")
            ]
            assert url == f"{server.url}/v1/files/acme/port/v1/config.json"
            got = http.get(url, params={"token": token.json()["token"]})
            assert (got.status_code, got.content) == (200, b"{}")
        assert f"public URL (download links): {server.url}" in server.log.read_text()


def test_served_url_reaches_wildcard_binds_through_the_loopback() -> None:
    assert served_url("127.0.0.1", 18100) == "http://127.0.0.1:18100"
    assert served_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"  # noqa: S104
    assert served_url("::", 8000) == "http://[::1]:8000"
    assert served_url("::1", 9000) == "http://[::1]:9000"
    assert served_url("weights.local", 80) == "http://weights.local:80"


def make_dry(*args: str) -> str:
    """What ``make`` would run for a fresh checkout (``-B``: as if nothing were built)."""
    return subprocess.run(
        ["make", "-n", "-B", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_make_run_serves_on_the_port_asked_without_test_extras() -> None:
    run = make_dry("run", "PORT=18100")
    assert "pip install --quiet -e .\n" in run
    assert "[test]" not in run
    assert "weightgate serve --host 127.0.0.1 --port 18100 --no-migrate" in run
    for target in ("lint", "test-sqlite", "test-postgres"):
        assert "pip install --quiet -e '.[test]'" in make_dry(target), target
