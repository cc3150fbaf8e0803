"""The README's quickstart, run as written against the server ``make run`` starts, gives the
output the README describes.

The shell block is taken from README.md itself, so the test and the page cannot drift
apart. Two things differ from a reader's terminal, both outside the block: the server
listens on a free port instead of 8000 (the block's ``127.0.0.1:8000`` is rewritten to
it, so a developer's own ``make run`` cannot collide with the test), and everything runs
in a temporary directory holding a link to this checkout's ``.venv`` (so ``./var`` and
``demo/`` are the test's). Runs once, in the PostgreSQL pass, because the quickstart is
about the embedded SQLite default whatever the pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.servers import ROOT, free_port, stop, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.own_database]


def quickstart_script() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme[readme.index("## Quickstart") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "README.md's quickstart has no sh block"
    return match.group(1)


def embedded_env(home: Path) -> dict[str, str]:
    """The environment of a new user's shell: no WEIGHTGATE_* settings of the test run
    (WEIGHTGATE_TEST_* steer the harness, e.g. make test-future's clock, and stay)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WEIGHTGATE_") or k.startswith("WEIGHTGATE_TEST_")
    }
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}


def json_documents(text: str) -> tuple[list[Any], list[str]]:
    """The JSON documents in ``text`` and the plain lines between them."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    lines: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "{":
            doc, pos = decoder.raw_decode(text, pos)
            docs.append(doc)
        else:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            lines.append(text[pos:end])
            pos = end
    return docs, lines


def test_the_readme_quickstart_works_as_written(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = embedded_env(tmp_path)
    port = free_port()
    # What `make run` does: migrate, then serve on the embedded defaults.
    subprocess.run([".venv/bin/weightgate", "migrate"], cwd=tmp_path, env=env, check=True)
    serve = [".venv/bin/weightgate", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [*serve, "--no-migrate"],
            cwd=tmp_path,
            env=env,  # no WEIGHTGATE_PUBLIC_URL: download links follow the port served
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=server)
        script = quickstart_script().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        before = datetime.now(UTC).replace(microsecond=0)  # relative times count whole seconds
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        after = datetime.now(UTC)
    finally:
        stop(server)
    assert run.returncode == 0, run.stderr

    # stdout: the revision, the admin's manifest, sha256sum's lines, the anonymous manifest.
    revision, _, rest = run.stdout.partition("\n")
    assert re.fullmatch(r"[0-9a-f]{40}", revision), run.stdout
    (admin, anonymous), sums = json_documents(rest)
    on_disk = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "demo").iterdir()
    }
    assert len(on_disk) == 4
    assert sorted(sums) == sorted(f"{h}  demo/{name}" for name, h in on_disk.items())
    assert admin["revision"] == revision
    # Publishing added each component's signature (docs/signing.md).
    uploaded = [f for f in admin["files"] if not f["path"].startswith("signatures/")]
    assert {f["path"]: f["sha256"] for f in uploaded} == on_disk
    assert {f["path"]: f["component"] for f in admin["files"]} == {
        "model-00001-of-00002.safetensors": "weights",
        "model-00002-of-00002.safetensors": "weights",
        "tokenizer.json": "tokenizer",
        "config.json": "config",
        "signatures/weights.sig": "weights",
        "signatures/tokenizer.sig": "tokenizer",
        "signatures/config.sig": "config",
    }
    comps = {c["name"]: c for c in admin["components"]}
    assert (comps["tokenizer"]["tier"], comps["config"]["tier"]) == ("open", "open")
    weights = comps["weights"]
    assert (weights["tier"], weights["next"]["tier"]) == ("internal", "partner")
    partner_at = datetime.fromisoformat(weights["next"]["at"])
    assert before + timedelta(hours=2) <= partner_at <= after + timedelta(hours=2)

    # "Anonymous callers see only what is open now ... the weights stay invisible."
    assert sorted(f["path"] for f in anonymous["files"]) == [
        "config.json",
        "signatures/config.sig",
        "signatures/tokenizer.sig",
        "tokenizer.json",
    ]
    assert sorted(c["name"] for c in anonymous["components"]) == ["config", "tokenizer"]

    # publish said back the times it fixed.
    said = re.search(
        r"schedule weights: partner at (\S+) \(\+2h\), open at (\S+) \(\+30d\)", run.stderr
    )
    assert said, run.stderr
    assert datetime.fromisoformat(said.group(1)) == partner_at
    open_at = datetime.fromisoformat(said.group(2))
    assert open_at - partner_at == timedelta(days=30) - timedelta(hours=2)
