"""``weightgate download`` and ``verify`` in-process: tokens, skipping, resuming a partial file
left by an earlier run, integrity, token renewal, embargo messages and exit codes.

Real parallelism, dropped connections and S3 redirects are in tests/e2e/test_cli_download*.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.cli.errors import EXIT_EMBARGO, EXIT_INTEGRITY, EXIT_NOT_FOUND
from app.clock import FixedClock
from app.storage import ObjectStore
from app.storage.filesystem import FilesystemStore
from tests.cli.conftest import CONFIG, MODEL, SHARD_1, SHARD_2, Cli
from tests.factories.catalogue import Published, check, publish_release
from tests.factories.principals import make_user
from tests.hfcompat.factories import grant

Hooks = list[Callable[[httpx.Request], None]]
SHARD_1_PATH = "shards/model-00001-of-00002.safetensors"
SHARD_2_PATH = "shards/model-00002-of-00002.safetensors"
ALL = {"config.json": CONFIG, SHARD_1_PATH: SHARD_1, SHARD_2_PATH: SHARD_2}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except our own record directory."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".weightgate" not in p.parts
    }


@pytest.fixture
def seen(transport_hook: Hooks) -> list[httpx.Request]:
    requests: list[httpx.Request] = []
    transport_hook.append(requests.append)
    return requests


@pytest.fixture
def researcher(cli: Cli, db: Session, clock: FixedClock, release: Published) -> str:
    user, key = make_user(db, clock, email="ada@example.org")
    grant(db, clock, user.id, MODEL)
    cli.as_user(key)
    return key


def files_requests(seen: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in seen if r.url.path.startswith("/v1/files/")]


def test_anonymous_download_takes_the_open_files_and_says_when_the_rest_opens(
    cli: Cli, release: Published, seen: list[httpx.Request]
) -> None:
    r = cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1")
    assert r.exit_code == 0, r.output
    assert tree(cli.workdir / "out") == {"config.json": CONFIG}
    assert (
        "not downloaded: component weights (research) needs an approved access request: "
        f"weightgate request-access {MODEL}; without a grant it opens to you at "
        "2026-07-01T12:00:00+00:00"
    ) in r.output
    # No key, no token: open files come straight from /v1/files.
    assert not [q for q in seen if q.url.path == "/v1/tokens"]
    assert "authorization" not in files_requests(seen)[0].headers


def test_researcher_downloads_everything_then_a_second_run_skips_it_all(
    cli: Cli, researcher: str, seen: list[httpx.Request]
) -> None:
    r = cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1")
    assert r.exit_code == 0, r.output
    assert tree(cli.workdir / "out") == ALL
    assert f"{MODEL}@v1: 3 downloaded" in r.output
    token_calls = [q for q in seen if q.url.path == "/v1/tokens"]
    assert len(token_calls) == 1
    assert json.loads(token_calls[0].content) == {
        "model": MODEL,
        "version": "v1",
        "components": ["config", "weights"],
    }
    # The API key never goes to /v1/files: the download token does.
    for q in files_requests(seen):
        assert q.headers["authorization"] != f"Bearer {researcher}"
    record = json.loads((cli.workdir / "out/.weightgate/download.json").read_text())
    assert record["files"][SHARD_1_PATH]["sha256"] == sha(SHARD_1)
    assert not list((cli.workdir / "out").rglob("*.part*"))

    seen.clear()
    again = cli("download", MODEL, "--to", "out", "--plain")
    assert again.exit_code == 0, again.output
    assert "0 downloaded (0 B), 3 already complete" in again.output
    assert not files_requests(seen)
    assert not [q for q in seen if q.url.path == "/v1/tokens"]


def test_a_partial_file_from_an_earlier_run_is_resumed_with_range(
    cli: Cli, researcher: str, seen: list[httpx.Request]
) -> None:
    out = cli.workdir / "out"
    part = out / (SHARD_1_PATH + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(SHARD_1[:1_000_000])
    (out / (SHARD_1_PATH + ".part.json")).write_text(
        json.dumps({"sha256": sha(SHARD_1), "size": len(SHARD_1), "path": SHARD_1_PATH})
    )
    r = cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1")
    assert r.exit_code == 0, r.output
    assert f"resume  {SHARD_1_PATH} at 976.6 KiB" in r.output
    ranges = {q.url.path.rsplit("/", 1)[-1]: q.headers.get("range") for q in files_requests(seen)}
    assert ranges == {
        "config.json": None,
        "model-00001-of-00002.safetensors": "bytes=1000000-",
        "model-00002-of-00002.safetensors": None,
    }
    assert tree(out) == ALL
    assert "1 resumed" in r.output


def test_a_partial_file_of_other_content_is_discarded(
    cli: Cli, researcher: str, seen: list[httpx.Request]
) -> None:
    out = cli.workdir / "out"
    part = out / "config.json.part"
    out.mkdir()
    part.write_bytes(b"stale bytes of an older file")
    (out / "config.json.part.json").write_text(json.dumps({"sha256": "0" * 64, "size": 28}))
    r = cli("download", MODEL, "--to", "out", "--include", "config.json", "--plain")
    assert r.exit_code == 0, r.output
    assert tree(out) == {"config.json": CONFIG}
    assert all("range" not in q.headers for q in files_requests(seen))


def test_include_globs_select_files_and_scope_the_token_to_their_paths(
    cli: Cli, researcher: str, seen: list[httpx.Request]
) -> None:
    r = cli("download", MODEL, "--to", "out", "-i", "shards/*-00002-*", "--plain")
    assert r.exit_code == 0, r.output
    assert tree(cli.workdir / "out") == {SHARD_2_PATH: SHARD_2}
    body = json.loads(next(q for q in seen if q.url.path == "/v1/tokens").content)
    assert body["paths"] == [SHARD_2_PATH]
    none = cli("download", MODEL, "--to", "out", "-i", "*.gguf")
    assert none.exit_code == EXIT_NOT_FOUND
    assert "no file of acme/atlas-7b@v1 matches *.gguf" in none.output


def test_a_corrupted_object_is_detected_and_never_put_in_place(
    cli: Cli, researcher: str, store: ObjectStore
) -> None:
    assert isinstance(store, FilesystemStore)
    blob = store.path_for(sha(SHARD_2))
    blob.write_bytes(b"\xff" * len(SHARD_2))  # same size, other bytes: bit rot on disk
    r = cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1")
    assert r.exit_code == EXIT_INTEGRITY, r.output
    assert f"{SHARD_2_PATH}: SHA-256 mismatch (expected {sha(SHARD_2)}" in r.output
    out = cli.workdir / "out"
    assert not (out / SHARD_2_PATH).exists()
    assert not (out / (SHARD_2_PATH + ".part")).exists()
    # The other files are fine and in place.
    assert tree(out) == {"config.json": CONFIG, SHARD_1_PATH: SHARD_1}


def test_an_expired_token_is_renewed_mid_download(
    cli: Cli,
    researcher: str,
    seen: list[httpx.Request],
    clock: FixedClock,
    transport_hook: Hooks,
) -> None:
    moved: list[bool] = []

    def expire_after_first_file(request: httpx.Request) -> None:
        second_file = request.url.path.startswith("/v1/files/") and len(files_requests(seen)) == 2
        if second_file and not moved:
            clock.advance(minutes=16)  # past the default 15-minute lifetime
            moved.append(True)

    transport_hook.append(expire_after_first_file)
    r = cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1")
    assert r.exit_code == 0, r.output
    assert "token renewed 1x" in r.output
    assert len([q for q in seen if q.url.path == "/v1/tokens"]) == 2
    assert tree(cli.workdir / "out") == ALL


def test_an_embargo_that_starts_mid_download_leaves_no_error_page_in_a_file(
    cli: Cli,
    researcher: str,
    client: TestClient,
    admin_headers: dict[str, str],
    transport_hook: Hooks,
) -> None:
    def restrict_weights(request: httpx.Request) -> None:
        if request.url.path.endswith("model-00001-of-00002.safetensors"):
            check(
                client.post(
                    f"/v1/models/{MODEL}/releases/v1/components/weights/schedule/restrict",
                    json={"tier": "partner", "reason": "leak investigation"},
                    headers=admin_headers,
                ),
                200,
            )

    transport_hook.append(restrict_weights)
    r = cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1")
    assert r.exit_code == EXIT_EMBARGO, r.output
    assert "nothing scheduled opens it to you" in r.output
    out = cli.workdir / "out"
    assert not (out / SHARD_1_PATH).exists()
    part = out / (SHARD_1_PATH + ".part")
    assert not part.exists() or part.read_bytes() == b""
    assert tree(out).get("config.json") == CONFIG


def test_asking_for_an_embargoed_component_prints_its_date_and_exits_embargo(
    cli: Cli,
    client: TestClient,
    admin_headers: dict[str, str],
    clock: FixedClock,
    db: Session,
    release: Published,
) -> None:
    publish_release(
        client,
        admin_headers,
        model=MODEL,
        version="v2",
        create=False,
        components={
            "config": [("open", clock.now() - timedelta(days=1))],
            "heads": [
                ("partner", clock.now() - timedelta(days=1)),
                ("research", clock.now() + timedelta(days=10)),
            ],
        },
        files={"config.json": ("config", b"{}"), "heads.bin": ("heads", b"h" * 64)},
    )
    user, key = make_user(db, clock)
    grant(db, clock, user.id, MODEL)
    cli.as_user(key)
    r = cli("download", f"{MODEL}@v2", "--component", "heads", "--to", "v2", "--plain")
    assert r.exit_code == EXIT_EMBARGO, r.output
    assert (
        "component heads (partner) is under embargo; it opens to you at 2026-06-11T12:00:00+00:00"
        in (r.output)
    )
    unknown = cli("download", f"{MODEL}@v2", "--component", "nope", "--to", "v2")
    assert unknown.exit_code == EXIT_NOT_FOUND
    assert "has no component 'nope'" in unknown.output


def test_verify_rechecks_a_downloaded_tree(cli: Cli, researcher: str) -> None:
    assert cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1").exit_code == 0
    ok = cli("verify", "out")
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().endswith("3 ok, 0 mismatched, 0 missing")
    out = cli.workdir / "out"
    target = out / SHARD_2_PATH
    stat = target.stat()
    target.write_bytes(b"\x00" * len(SHARD_2))
    # Keep the old mtime: only hashing can tell, and verify hashes.
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (out / "config.json").unlink()
    bad = cli("verify", "out", "--offline")
    assert bad.exit_code == EXIT_INTEGRITY
    assert f"MISMATCH  {SHARD_2_PATH}" in bad.output
    assert "missing   config.json" in bad.output
    # The next download does not trust the damaged file any more: it fetches it again.
    fixed = cli("download", MODEL, "--to", "out", "--plain", "--parallel", "1")
    assert fixed.exit_code == 0, fixed.output
    assert tree(out) == ALL
    assert "2 downloaded" in fixed.output


def test_verify_of_a_directory_that_is_not_a_download(cli: Cli) -> None:
    (cli.workdir / "empty").mkdir()
    r = cli("verify", "empty", "--offline")
    assert r.exit_code == 1
    assert "holds no weightgate download" in r.output
