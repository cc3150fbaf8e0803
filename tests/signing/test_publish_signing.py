"""Publishing signs each component in the OpenSSF model-signing format; the upstream tool
verifies what was downloaded, and refuses what was tampered with."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.storage import ObjectStore
from tests.factories.catalogue import check, publish_release
from tests.signing.helpers import materialise, release_keys, upstream_verify, write_public_key

FILES = {
    "config.json": ("config", b'{"architectures": ["Atlas"]}'),
    "tokenizer/tokenizer.json": ("config", b'{"vocab": {}}'),
    "model-00001-of-00002.safetensors": ("weights", b"\x01" * 5000),
    "model-00002-of-00002.safetensors": ("weights", b"\x02" * 3000),
}


def test_publish_signs_each_component_and_upstream_verifies(
    client: TestClient, admin_headers: dict[str, str], store: ObjectStore, tmp_path: Path
) -> None:
    publish_release(client, admin_headers, components={"config": [], "weights": []}, files=FILES)
    manifest = check(
        client.get("/v1/models/acme/atlas-7b/releases/v1/manifest", headers=admin_headers), 200
    )
    paths = {f["path"]: f["component"] for f in manifest["files"]}
    assert paths["signatures/config.sig"] == "config"
    assert paths["signatures/weights.sig"] == "weights"
    assert manifest["signature_status"] == "signed"
    assert [s["path"] for s in manifest["signatures"]] == [
        "signatures/config.sig",
        "signatures/weights.sig",
    ]
    keys = release_keys(client)
    key_id = manifest["signatures"][0]["key_id"]
    pub = write_public_key(keys, key_id, tmp_path / "release.pub")
    root = materialise(store, manifest, tmp_path / "atlas")
    done = upstream_verify(root, root / "signatures/weights.sig", pub, "--ignore_unsigned_files")
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout
    (root / "model-00002-of-00002.safetensors").write_bytes(b"\x02" * 2999 + b"\x03")
    bad = upstream_verify(root, root / "signatures/weights.sig", pub, "--ignore_unsigned_files")
    assert bad.returncode == 1
    assert "Hash mismatch for" in bad.stderr
    assert "model-00002-of-00002.safetensors" in bad.stderr
