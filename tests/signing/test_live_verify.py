"""Signed releases end to end: a live server, files fetched by ``weightgate download`` and by
``huggingface_hub``, checked by upstream ``python -m model_signing verify key`` and by
``weightgate verify`` against keys pinned with ``weightgate trust add``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huggingface_hub import snapshot_download

from app.cli.errors import EXIT_INTEGRITY
from tests.factories.catalogue import publish_release
from tests.fixtures.servers import VENV_BIN
from tests.hfcompat.live import Deployment, deployment
from tests.signing.helpers import upstream_verify

pytestmark = pytest.mark.slow

MODEL = "acme/signed"
WEIGHTS = {
    "model-00001-of-00002.safetensors": b"\x11" * 300_000,
    "model-00002-of-00002.safetensors": b"\x22" * 100_000,
}
CONFIG = {"config.json": b'{"architectures": ["Atlas"]}', "tokenizer/tokenizer.json": b"{}"}


@dataclass
class Signed:
    dep: Deployment
    researcher: str  # API key of a researcher with a grant
    public_key: Path  # the release key as published, for the upstream tool


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    tmp = tmp_path_factory.mktemp("signed")
    past = datetime.now(UTC) - timedelta(days=1)
    with deployment(tmp, "filesystem") as dep:
        with dep.client() as http:
            for version, weights in (("v1", WEIGHTS), ("v2", {"model.safetensors": b"v2"})):
                publish_release(
                    http,  # type: ignore[arg-type]  # httpx.Client: the same calls
                    dep.admin_headers,
                    model=MODEL,
                    version=version,
                    create=version == "v1",
                    components={"config": [("open", past)], "weights": [("research", past)]},
                    files={
                        **{p: ("config", d) for p, d in CONFIG.items()},
                        **{p: ("weights", d) for p, d in weights.items()},
                    },
                )
            keys = http.get("/.well-known/release-keys.json").json()
        user_id, key = dep.create_user("signed@example.org")
        dep.grant(user_id, MODEL)
        public = tmp / "release-key.pub"
        public.write_text(keys["keys"][0]["public_key"])
        yield Signed(dep, key, public)


def weightgate(
    signed: Signed, home: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **signed.dep.env,
        "WEIGHTGATE_URL": signed.dep.url,
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    env.pop("WEIGHTGATE_TOKEN", None)
    if key:
        env["WEIGHTGATE_TOKEN"] = key
    return subprocess.run(
        [str(VENV_BIN / "weightgate"), *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def download(
    signed: Signed, home: Path, *args: str, key: str | None = None, version: str = "v1"
) -> Path:
    target = f"{MODEL}@{version}"
    r = weightgate(signed, home, "download", target, "--to", "out", "--plain", *args, key=key)
    assert r.returncode == 0, r.stdout + r.stderr
    return home / "out"


def pin(signed: Signed, home: Path) -> None:
    r = weightgate(signed, home, "trust", "add", signed.dep.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pinned " in r.stdout


def test_cli_download_verifies_with_upstream_and_weightgate_and_tampering_fails(
    signed: Signed, tmp_path: Path
) -> None:
    out = download(signed, tmp_path, "-c", "weights", key=signed.researcher)
    assert sorted(p.name for p in (out / "signatures").iterdir()) == ["weights.sig"]
    # Only the weights here: the upstream tool verifies the directory as it is.
    ok = upstream_verify(out, out / "signatures/weights.sig", signed.public_key)
    assert ok.returncode == 0, ok.stderr
    assert "Verification succeeded" in ok.stdout

    unpinned = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert unpinned.returncode == EXIT_INTEGRITY
    assert "which you have not pinned (weightgate trust add" in unpinned.stdout
    pin(signed, tmp_path)
    good = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"signed    signatures/weights.sig: {MODEL}@v1 component weights, 2 file(s)" in (
        good.stdout
    )
    assert f"(pinned from {signed.dep.url})" in good.stdout
    assert "signatures: 2 file(s) verified, 0 not covered, 0 signature(s) failed" in good.stdout

    shard = out / "model-00002-of-00002.safetensors"
    original = shard.read_bytes()
    shard.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one flipped bit
    flipped = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert flipped.returncode == EXIT_INTEGRITY
    assert "model-00002-of-00002.safetensors: does not match what was signed" in flipped.stdout
    upstream = upstream_verify(out, out / "signatures/weights.sig", signed.public_key)
    assert upstream.returncode == 1
    assert "Hash mismatch for" in upstream.stderr

    shard.unlink()
    missing = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert missing.returncode == EXIT_INTEGRITY
    assert "model-00002-of-00002.safetensors: missing (signed, but not in this directory)" in (
        missing.stdout
    )
    upstream = upstream_verify(out, out / "signatures/weights.sig", signed.public_key)
    assert "Missing files in model" in upstream.stderr
    shard.write_bytes(original)

    (out / "backdoor.py").write_text("import os\n")
    extra = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert extra.returncode == EXIT_INTEGRITY
    assert "UNSIGNED  backdoor.py: no signature covers this file" in extra.stdout
    upstream = upstream_verify(out, out / "signatures/weights.sig", signed.public_key)
    assert upstream.returncode == 1
    assert "Extra files found in model" in upstream.stderr
    assert "backdoor.py" in upstream.stderr


def test_signatures_of_another_key_or_release_are_refused(signed: Signed, tmp_path: Path) -> None:
    out = download(signed, tmp_path, "-c", "weights", key=signed.researcher)
    pin(signed, tmp_path)
    genuine = (out / "signatures/weights.sig").read_bytes()

    # Another release of the same model, signed by the same key: its weights signature.
    (tmp_path / "v2").mkdir()
    v2 = download(signed, tmp_path / "v2", "-c", "weights", key=signed.researcher, version="v2")
    shutil.copy(v2 / "signatures/weights.sig", out / "signatures/weights.sig")
    other_release = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert other_release.returncode == EXIT_INTEGRITY
    assert f"this is a signature of {MODEL}@v2" in other_release.stdout
    assert f"not of the release in this directory, {MODEL}@v1" in other_release.stdout
    upstream = upstream_verify(out, out / "signatures/weights.sig", signed.public_key)
    assert upstream.returncode == 1

    # The same files signed with a key that is not the lab's (model-signing itself).
    forger = tmp_path / "forger.pem"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(forger)],
        check=True,
    )
    (out / "signatures/weights.sig").write_bytes(genuine)
    forged = tmp_path / "forged.sig"
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "model_signing", "sign", "key", "--private_key",
         str(forger), "--signature", str(forged), "--ignore-paths", str(out / "signatures"),
         "--ignore-paths", str(out / ".weightgate"), str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shutil.copy(forged, out / "signatures/weights.sig")
    other_key = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert other_key.returncode == EXIT_INTEGRITY
    assert "which you have not pinned" in other_key.stdout
    upstream = upstream_verify(out, out / "signatures/weights.sig", signed.public_key)
    assert upstream.returncode == 1
    assert "Key mismatch" in upstream.stderr


def test_partial_access_verifies_what_was_downloaded(signed: Signed, tmp_path: Path) -> None:
    # Anonymous: only the open config component (and its signature) comes down.
    out = download(signed, tmp_path)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith(".weightgate/")] == [
        "config.json",
        "signatures/config.sig",
        "tokenizer/tokenizer.json",
    ]
    ok = upstream_verify(out, out / "signatures/config.sig", signed.public_key)
    assert ok.returncode == 0, ok.stderr
    pin(signed, tmp_path)
    mine = weightgate(signed, tmp_path, "verify", "out")
    assert mine.returncode == 0, mine.stdout + mine.stderr
    assert "signatures: 2 file(s) verified, 0 not covered" in mine.stdout


def test_huggingface_hub_download_verifies_with_upstream_and_weightgate(
    signed: Signed, tmp_path: Path
) -> None:
    folder = Path(
        snapshot_download(
            MODEL,
            endpoint=signed.dep.url,
            token=signed.researcher,
            local_dir=tmp_path / "hf",
            revision="v1",
        )
    )
    assert (folder / ".cache/huggingface").is_dir()  # the client's own bookkeeping
    for component in ("config", "weights"):
        done = upstream_verify(
            folder, folder / f"signatures/{component}.sig", signed.public_key,
            "--ignore_unsigned_files",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    # The Hub cache: a snapshot of symlinks into blobs, as inference servers load it.
    cached = Path(
        snapshot_download(
            MODEL,
            endpoint=signed.dep.url,
            token=signed.researcher,
            cache_dir=tmp_path / "cache",
            revision="v1",
        )
    )
    done = upstream_verify(
        cached, cached / "signatures/weights.sig", signed.public_key,
        "--ignore_unsigned_files", "--allow_symlinks",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pin(signed, tmp_path)
    mine = weightgate(signed, tmp_path, "verify", str(folder))
    assert mine.returncode == 0, mine.stdout + mine.stderr
    assert "signatures: 4 file(s) verified, 0 not covered, 0 signature(s) failed" in mine.stdout


def test_a_revoked_signature_is_announced_and_refused(signed: Signed, tmp_path: Path) -> None:
    download(signed, tmp_path, "-c", "weights", key=signed.researcher, version="v2")
    with signed.dep.client(signed.dep.admin_key) as admin:
        r = admin.post(
            f"/v1/models/{MODEL}/releases/v2/signatures/revoke",
            json={"reason": "signed with a key copied off a build machine"},
        )
        assert r.status_code == 200, r.text
        manifest = admin.get(f"/v1/models/{MODEL}/releases/v2/manifest").json()
    assert manifest["signature_status"] == "revoked"
    online = weightgate(signed, tmp_path, "verify", "out", key=signed.researcher)
    assert online.returncode == EXIT_INTEGRITY
    assert "signatures were revoked at" in online.stdout
    pin(signed, tmp_path)  # the server's revocation list comes with the keys
    offline = weightgate(signed, tmp_path, "verify", "out", "--offline")
    assert offline.returncode == EXIT_INTEGRITY
    assert "REVOKED   signatures/weights.sig: revoked at" in offline.stdout
    assert "signed with a key copied off a build machine" in offline.stdout
    store = json.loads((tmp_path / "config/weightgate/trusted-release-keys.json").read_text())
    assert [(r["model"], r["version"]) for r in store["revoked"]] == [(MODEL, "v2")]
    assert signed.dep.count_events("release.signature_revoked") == 1
