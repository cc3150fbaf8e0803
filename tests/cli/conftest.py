"""Running the ``weightgate`` client commands in-process against the app (TestClient as the
HTTP transport), with a fixed clock and a private config directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from app.cli import body_transport
from app.cli import http as cli_http
from app.cli.body_transport import HttpxTransport
from app.cli.main import app as cli_app
from app.clock import FixedClock
from tests.factories.catalogue import Published, publish_release

MODEL = "acme/atlas-7b"
CONFIG = b'{"hidden_size": 4096}'
SHARD_1 = bytes(range(256)) * 12_000 + b"tail"  # ~3 MiB: several 1 MiB chunks
SHARD_2 = b"\x01\x02" * 5000


@dataclass
class Cli:
    runner: CliRunner
    monkeypatch: pytest.MonkeyPatch
    workdir: Path

    def as_user(self, key: str | None) -> None:
        if key is None:
            self.monkeypatch.delenv("WEIGHTGATE_TOKEN", raising=False)
        else:
            self.monkeypatch.setenv("WEIGHTGATE_TOKEN", key)

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(cli_app, list(args), input=input)


@pytest.fixture
def transport_hook() -> list[Callable[[httpx.Request], None]]:
    """Callbacks run on every request the CLI sends (to inspect it or move the clock)."""
    return []


@pytest.fixture
def cli(
    app: FastAPI,
    client: TestClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    transport_hook: list[Callable[[httpx.Request], None]],
) -> Cli:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("WEIGHTGATE_URL", "http://testserver")
    monkeypatch.delenv("WEIGHTGATE_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)

    def in_process(base_url: str) -> httpx.Client:
        # One DB connection serves the test's transaction: run CLI downloads with
        # --parallel 1 here (the live-server tests cover real parallelism).
        tc = TestClient(app, base_url=base_url, raise_server_exceptions=True)
        tc.event_hooks = {"request": transport_hook, "response": []}
        # Starlette's TestClient is an httpx2.Client: the same interface, another class.
        return tc  # type: ignore[return-value]

    monkeypatch.setattr(cli_http, "make_httpx_client", in_process)
    monkeypatch.setattr(body_transport, "make_body_transport", lambda api: HttpxTransport(api.http))
    return Cli(CliRunner(), monkeypatch, tmp_path)


@pytest.fixture
def release(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> Published:
    """config open since yesterday; weights research since yesterday, open in 30 days."""
    past = clock.now() - timedelta(days=1)
    return publish_release(
        client,
        admin_headers,
        model=MODEL,
        components={
            "config": [("open", past)],
            "weights": [("research", past), ("open", clock.now() + timedelta(days=30))],
        },
        files={
            "config.json": ("config", CONFIG),
            "shards/model-00001-of-00002.safetensors": ("weights", SHARD_1),
            "shards/model-00002-of-00002.safetensors": ("weights", SHARD_2),
        },
    )
