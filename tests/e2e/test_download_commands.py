"""The download commands the console shows, run exactly as shown against a live server (both
object stores): curl with the download token, the real ``hf download`` and ``weightgate
download`` with the API key in ``$WEIGHTGATE_TOKEN``; each ends by checking the SHA-256s."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.tokens.commands import render
from app.tokens.schemas import TokenOut
from tests.factories.catalogue import publish_release
from tests.fixtures.servers import VENV_BIN
from tests.hfcompat.live import Deployment, deployment

pytestmark = pytest.mark.slow

FILES = {
    "config.json": ("config", b'{"architectures": ["Atlas"]}'),
    "tokenizer/special tokens.json": ("config", b'{"pad": 0}'),
    "model-00001-of-00001.safetensors": ("weights", os.urandom(256 * 1024 + 3)),
    "eval/held-out.jsonl": ("eval", b"{}\n"),
}


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, str]]:
    endpoint = request.getfixturevalue("s3_endpoint") if request.param == "s3" else None
    tmp = tmp_path_factory.mktemp(f"cmds-{request.param}")
    past = datetime.now(UTC) - timedelta(hours=1)
    with deployment(tmp, request.param, s3_endpoint=endpoint) as dep:
        with dep.client() as http:
            publish_release(
                http,  # type: ignore[arg-type]  # httpx.Client: the same calls as TestClient
                dep.admin_headers,
                model="acme/atlas-7b",
                components={
                    "config": [("open", past)],
                    "weights": [("research", past)],
                    "eval": [("research", past)],
                },
                files=FILES,
            )
        user_id, key = dep.create_user(f"cmds-{request.param}@example.org")
        dep.grant(user_id, "acme/atlas-7b")
        yield dep, key


def _run(block: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _env(dep: Deployment, key: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "WEIGHTGATE_TOKEN": key,
        "HF_HOME": str(home / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "XDG_CONFIG_HOME": str(home / "config"),
    }


def _uploaded(paths: list[str]) -> dict[str, str]:
    return {p: hashlib.sha256(FILES[p][1]).hexdigest() for p in paths}


def _assert_fetched(folder: Path, wanted: dict[str, str]) -> None:
    """Exactly the files ``wanted`` names (path to SHA-256) are there, with those digests."""
    got = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        # hf keeps .cache/huggingface/, weightgate .weightgate/download.json: not model files.
        if p.is_file() and not {".cache", ".weightgate"} & set(p.relative_to(folder).parts)
    )
    assert got == sorted(wanted)
    for path, digest in wanted.items():
        assert hashlib.sha256((folder / path).read_bytes()).hexdigest() == digest, path


def _issue(dep: Deployment, key: str, choice: dict[str, list[str]]) -> TokenOut:
    with dep.client(key) as http:
        resp = http.post("/v1/tokens", json={"model": "acme/atlas-7b", **choice})
        assert resp.status_code == 201, resp.text
    return TokenOut.model_validate(resp.json())


def test_each_shown_command_downloads_and_verifies(
    live: tuple[Deployment, str], tmp_path: Path
) -> None:
    dep, key = live
    token = _issue(dep, key, {"components": ["weights", "config"]})
    wanted = sorted(f.path for f in token.files)
    assert "eval/held-out.jsonl" not in wanted
    # The files uploaded, with the digests they were uploaded with, and each component's
    # signature file (#22), which the server wrote at publish.
    uploaded = [p for p in wanted if not p.startswith("signatures/")]
    assert [p for p in wanted if p not in uploaded] == [
        "signatures/config.sig",
        "signatures/weights.sig",
    ]
    expected = {f.path: f.sha256 for f in token.files}
    assert {p: expected[p] for p in uploaded} == _uploaded(uploaded)
    cmds = render(token, base_url=dep.url)
    for name, block in (("curl", cmds.curl), ("hf", cmds.hf), ("weightgate", cmds.weightgate)):
        cwd = tmp_path / name
        cwd.mkdir()
        out = _run(block, cwd, _env(dep, key, tmp_path / f"{name}-home"))
        assert out.returncode == 0, f"{name}:\n{block}\n{out.stdout}\n{out.stderr}"
        # sha256sum -c printed one OK per file: the check really ran on every file.
        assert sorted(line for line in out.stdout.splitlines() if line.endswith(": OK")) == sorted(
            f"{p}: OK" for p in wanted
        )
        _assert_fetched(cwd / cmds.directory, expected)


def test_commands_for_chosen_files_fetch_only_those(
    live: tuple[Deployment, str], tmp_path: Path
) -> None:
    """A token narrowed to files: the weightgate command asks for exactly them (--include
    with a literal glob), and so does hf download (the files named)."""
    dep, key = live
    token = _issue(dep, key, {"paths": ["tokenizer/special tokens.json"]})
    cmds = render(token, base_url=dep.url)
    for name, block in (("hf", cmds.hf), ("weightgate", cmds.weightgate)):
        cwd = tmp_path / name
        cwd.mkdir()
        out = _run(block, cwd, _env(dep, key, tmp_path / f"{name}-home"))
        assert out.returncode == 0, f"{name}:\n{block}\n{out.stdout}\n{out.stderr}"
        _assert_fetched(cwd / cmds.directory, _uploaded(["tokenizer/special tokens.json"]))


def test_a_tampered_file_fails_the_shown_check(
    live: tuple[Deployment, str], tmp_path: Path
) -> None:
    dep, key = live
    with dep.client(key) as http:
        resp = http.post("/v1/tokens", json={"model": "acme/atlas-7b", "components": ["config"]})
    token = TokenOut.model_validate(resp.json())
    cmds = render(token, base_url=dep.url)
    first = _run(cmds.curl, tmp_path, _env(dep, key, tmp_path))
    assert first.returncode == 0, first.stderr
    (tmp_path / cmds.directory / "config.json").write_bytes(b"tampered")
    # The check alone (the last lines of the block), on the tampered folder.
    check = cmds.curl[cmds.curl.index("(cd ") :]
    out = _run(check, tmp_path, _env(dep, key, tmp_path))
    assert out.returncode != 0
    assert "config.json: FAILED" in out.stdout
