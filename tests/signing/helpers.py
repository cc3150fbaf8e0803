"""Shared by the signing tests: a release laid out on disk as a client would download it, the
published release keys, and upstream ``model_signing`` verification."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.clock import FixedClock
from app.main import create_app
from app.settings import Settings
from app.storage import ObjectStore

UPSTREAM = [sys.executable, "-m", "model_signing", "verify"]


def materialise(store: ObjectStore, manifest: dict[str, Any], root: Path) -> Path:
    """Write the manifest's files under ``root`` from the store (what a download does)."""
    for f in manifest["files"]:
        target = root.joinpath(*f["path"].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"".join(store.iter_range(f["sha256"])))
    return root


def release_keys(client: TestClient) -> dict[str, Any]:
    resp = client.get("/.well-known/release-keys.json")
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def write_public_key(doc: dict[str, Any], key_id: str, target: Path) -> Path:
    key = next(k for k in doc["keys"] if k["key_id"] == key_id)
    target.write_text(key["public_key"])
    return target


def upstream_verify(
    model_dir: Path, signature: Path, public_key: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``python -m model_signing verify key`` exactly as a researcher runs it."""
    return subprocess.run(
        [
            *UPSTREAM,
            "key",
            "--signature",
            str(signature),
            "--public_key",
            str(public_key),
            *extra,
            str(model_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def serve(
    settings: Settings,
    *,
    clock: FixedClock,
    store: ObjectStore,
    engine: Engine,
    session_factory: sessionmaker[Session],
) -> TestClient:
    """A client of an app made with ``settings`` (as the ``app`` fixture makes one): for tests
    that restart the server with another key."""
    app = create_app(
        settings,
        clock=clock,
        store=store,
        engine=engine,
        sessions=session_factory,
        run_background=False,
    )
    return TestClient(app, raise_server_exceptions=True)


def upstream_verify_certificate(
    model_dir: Path, signature: Path, ca: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``python -m model_signing verify certificate``: the chain in the bundle, checked
    against the lab's CA."""
    return subprocess.run(
        [
            *UPSTREAM,
            "certificate",
            "--signature",
            str(signature),
            "--certificate_chain",
            str(ca),
            *extra,
            str(model_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
