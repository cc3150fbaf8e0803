"""Smaller hardening at the edge: database errors never carry their parameters, the embedded
database and objects are private to the server's user, answers say nosniff and carry a CSP,
/docs loads nothing from elsewhere, and OPTIONS and 405 name every allowed method."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import make_engine
from app.main import create_app
from app.migrate import upgrade
from app.settings import Settings
from app.storage.filesystem import FilesystemStore


def test_a_failed_statement_never_shows_its_parameters(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError) as failed:
            conn.execute(
                text("SELECT id FROM no_such_table WHERE secret = :s"),
                {"s": "wg_leakedprefix"},
            )
    finally:
        engine.dispose()
    assert "wg_leakedprefix" not in str(failed.value)
    assert "hidden due to hide_parameters" in str(failed.value)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def default_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_embedded_database_and_objects_are_private(tmp_path: Path, default_umask: None) -> None:
    data = tmp_path / "var"
    settings = Settings(environment="test", data_dir=data, scheduler_enabled=False, _env_file=None)
    url = settings.effective_database_url
    upgrade(url=url)
    create_app(settings, run_background=False)
    store = FilesystemStore(data / "objects")
    writer = store.writer()
    writer.write(b"weights under embargo")
    blob = writer.commit()
    assert mode(data) == 0o700
    assert mode(data / "weightgate.db") == 0o600
    assert mode(data / "objects") == 0o700
    assert mode(store.path_for(blob.sha256).parent) == 0o700
    assert mode(store.path_for(blob.sha256)) == 0o600


def test_answers_say_nosniff_and_let_nothing_load(client: TestClient) -> None:
    for r in (client.get("/v1/models"), client.get("/v1/models/acme/none"), client.get("/metrics")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in r.headers["content-security-policy"]


def test_the_api_reference_is_served_from_here(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    assert all(s.startswith("/docs/") for s in sources), sources
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    for src in sources:
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert "cdn" not in asset.text[:2000].lower() or src.endswith(".js")
    assert "/openapi.json" in client.get("/docs/init.js").text
    assert client.get("/redoc").status_code == 404


def test_options_and_405_name_every_allowed_method(client: TestClient) -> None:
    options = client.options("/v1/models")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, OPTIONS, POST"
    refused = client.put("/v1/models")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, OPTIONS, POST"
    assert refused.json()["code"] == "method_not_allowed"
    download = client.options("/v1/files/acme/x/v1/a.bin")
    assert (download.status_code, download.headers["allow"]) == (204, "GET, HEAD, OPTIONS")
    resolve = client.options("/acme/x/resolve/main/a.bin")
    assert (resolve.status_code, resolve.headers["allow"]) == (204, "GET, HEAD, OPTIONS")
    assert client.options("/no/such/route/at/all/here").status_code == 404
