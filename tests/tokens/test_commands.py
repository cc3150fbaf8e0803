"""The ready-to-paste download commands: quoting that no path can break out of, the token
only in the curl block, an API key never printed. (Running them for real: e2e.)"""

from __future__ import annotations

import shlex
import subprocess
from datetime import UTC, datetime

import pytest

from app.policy.tiers import Tier
from app.tokens.commands import render
from app.tokens.schemas import ScopeOut, TokenFile, TokenOut

pytestmark = pytest.mark.no_database

BASE = "https://weights.example"


def _token(paths: list[str], *, narrowed: bool = False) -> TokenOut:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return TokenOut(
        token="eyJ.hdr.sig",
        jti="j1",
        issued_at=at,
        expires_at=at,
        tier=Tier.RESEARCH,
        max_uses=None,
        scope=ScopeOut(
            model="acme/atlas-7b",
            version="v1",
            revision="a" * 40,
            components=["weights", "config"],
            paths=paths if narrowed else None,
        ),
        files=[
            TokenFile(
                path=p,
                size=1,
                sha256=f"{i:064x}",
                component="weights",
                url=f"{BASE}/v1/files/acme/atlas-7b/v1/{p}",
            )
            for i, p in enumerate(paths)
        ],
    )


def test_every_command_fetches_into_one_folder_and_checks_the_sums() -> None:
    cmds = render(_token(["config.json", "model.safetensors"]), base_url=BASE + "/")
    assert cmds.directory == "atlas-7b"
    assert cmds.sha256sums == f"{0:064x}  config.json\n{1:064x}  model.safetensors\n"
    for block in (cmds.curl, cmds.hf, cmds.weightgate):
        assert "sha256sum -c - <<'SHA256SUMS'\n" + cmds.sha256sums + "SHA256SUMS\n)" in block
    assert cmds.curl.startswith("WG_DOWNLOAD_TOKEN=eyJ.hdr.sig\n")
    assert '-H "Authorization: Bearer $WG_DOWNLOAD_TOKEN"' in cmds.curl
    assert "-o atlas-7b/model.safetensors " + BASE + "/v1/files/acme/atlas-7b/v1/model" in (
        cmds.curl
    )
    assert cmds.hf.splitlines()[0] == (
        f'HF_ENDPOINT={BASE} HF_TOKEN="$WEIGHTGATE_TOKEN" hf download acme/atlas-7b '
        f"config.json model.safetensors --revision {'a' * 40} --local-dir atlas-7b"
    )
    assert cmds.weightgate.splitlines()[0] == (
        f"WEIGHTGATE_URL={BASE} weightgate download acme/atlas-7b@v1 "
        "--component weights --component config --to atlas-7b"
    )
    # The API key is never on the page: only the download token, in the curl block.
    assert "eyJ" not in cmds.hf
    assert "eyJ" not in cmds.weightgate


def test_hostile_paths_stay_arguments() -> None:
    evil = ["a b/$(touch pwned).bin", "q'uote`x`;rm -rf ~.bin", "star*[x]?.bin"]
    cmds = render(_token(evil, narrowed=True), base_url=BASE)
    first = cmds.hf.splitlines()[0]
    argv = shlex.split(first)
    assert argv[argv.index("acme/atlas-7b") + 1 : argv.index("--revision")] == evil
    wg = shlex.split(cmds.weightgate.splitlines()[0])
    includes = [wg[i + 1] for i, a in enumerate(wg) if a == "--include"]
    assert includes == ["a b/$(touch pwned).bin", "q'uote`x`;rm -rf ~.bin", "star[*][[]x][?].bin"]
    # bash parses every line without running anything it should not: `-n` checks syntax,
    # and the argv of each curl line is exactly the intended one.
    assert subprocess.run(["bash", "-n", "-c", cmds.curl], check=False).returncode == 0
    curl_lines = [shlex.split(line) for line in cmds.curl.splitlines() if line.startswith("curl")]
    assert [argv[argv.index("-o") + 1] for argv in curl_lines] == [f"atlas-7b/{p}" for p in evil]
