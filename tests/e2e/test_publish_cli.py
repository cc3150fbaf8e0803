"""End to end, as an operator does it: a live ``weightgate serve`` on each storage driver,
an admin bootstrapped with ``weightgate admin create-user``, a folder published with
``weightgate publish``, and the manifest checked against the real ``sha256sum``."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest

from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import VENV_BIN, LiveServer, live_server

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


@pytest.fixture(params=["filesystem", "s3"])
def storage_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "filesystem":
        yield {"WEIGHTGATE_STORAGE_URL": (tmp_path / "objects").as_uri()}
        return
    endpoint: str = request.getfixturevalue("s3_endpoint")
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    yield {
        "WEIGHTGATE_STORAGE_URL": f"s3://{bucket}/weights",
        "WEIGHTGATE_S3_ENDPOINT_URL": endpoint,
        "WEIGHTGATE_S3_PATH_STYLE": "true",
        "WEIGHTGATE_S3_REGION": "us-east-1",
        # Small parts so the 6 MiB shard below goes through multipart upload.
        "WEIGHTGATE_S3_MULTIPART_THRESHOLD": str(5 * MiB),
        "WEIGHTGATE_S3_MULTIPART_CHUNK": str(5 * MiB),
    }


@pytest.fixture
def server(tmp_path: Path, storage_env: dict[str, str]) -> Iterator[LiveServer]:
    with (
        fresh_database(tmp_path, label="e2e") as db_url,
        live_server({"WEIGHTGATE_DATABASE_URL": db_url, **storage_env}, tmp=tmp_path) as live,
    ):
        yield live


def weightgate(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "weightgate"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def sha256sum(folder: Path) -> dict[str, str]:
    """What coreutils says, keyed by path relative to ``folder``."""
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    out = subprocess.run(
        ["sha256sum", *files], cwd=folder, capture_output=True, text=True, check=True
    ).stdout
    sums = {}
    for line in out.splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    return sums


def test_publish_a_folder_and_read_its_manifest(
    server: LiveServer, storage_env: dict[str, str], tmp_path: Path
) -> None:
    created = weightgate(
        ["admin", "create-user", "--email", "ops@example.org", "--role", "admin"],
        server.env,
        tmp_path,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("wg_")

    folder = tmp_path / "atlas"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "model-00001-of-00002.safetensors").write_bytes(os.urandom(6 * MiB + 17))
    (folder / "model-00002-of-00002.safetensors").write_bytes(os.urandom(4096))
    (folder / "tokenizer" / "tokenizer.json").write_bytes(b'{"version": "1.0"}\n')
    client_env = {
        **os.environ,
        "WEIGHTGATE_URL": server.url,
        "WEIGHTGATE_TOKEN": key,
        "HOME": str(tmp_path),  # no stray client config from the machine
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    before = datetime.now(UTC).replace(microsecond=0)  # relative times count whole seconds
    published = weightgate(
        [
            "publish",
            str(folder),
            "--model",
            "acme/atlas-7b",
            "--version",
            "v1",
            "--component",
            "weights=*.safetensors",
            "--component",
            "tokenizer=tokenizer*",
            "--schedule",
            "weights=partner@+2h,research@+30d",
        ],
        client_env,
        tmp_path,
    )
    after = datetime.now(UTC)
    assert published.returncode == 0, published.stderr
    revision = published.stdout.strip().splitlines()[-1]
    assert len(revision) == 40
    assert key not in published.stdout + published.stderr

    resp = httpx.get(
        f"{server.url}/v1/models/acme/atlas-7b/releases/v1/manifest",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200, resp.text
    manifest = resp.json()
    assert manifest["revision"] == revision
    assert manifest["status"] == "published"
    expected = sha256sum(folder)
    # Publishing added each component's signature (app/signing); the rest is the folder.
    signatures = {
        f["path"]: f["sha256"] for f in manifest["files"] if f["path"].startswith("signatures/")
    }
    assert sorted(signatures) == ["signatures/tokenizer.sig", "signatures/weights.sig"]
    uploaded = [f for f in manifest["files"] if f["path"] not in signatures]
    assert {f["path"]: f["sha256"] for f in uploaded} == expected
    assert {f["path"]: f["size"] for f in uploaded} == {
        p: (folder / p).stat().st_size for p in expected
    }
    assert {f["path"]: f["component"] for f in manifest["files"]} == {
        "model-00001-of-00002.safetensors": "weights",
        "model-00002-of-00002.safetensors": "weights",
        "tokenizer/tokenizer.json": "tokenizer",
        "signatures/tokenizer.sig": "tokenizer",
        "signatures/weights.sig": "weights",
    }
    # '+2h' was fixed once, when the command ran, said back, and is the next stage.
    weights = next(c for c in manifest["components"] if c["name"] == "weights")
    assert weights["next"]["tier"] == "partner"
    partner_at = datetime.fromisoformat(weights["next"]["at"])
    assert before + timedelta(hours=2) <= partner_at <= after + timedelta(hours=2)
    said = f"partner at {partner_at.isoformat().replace('+00:00', 'Z')} (+2h)"
    assert f"schedule weights: {said}, research at " in published.stderr

    # The bytes are in the configured store, under their content address and nowhere else.
    url = storage_env["WEIGHTGATE_STORAGE_URL"]
    if url.startswith("s3://"):
        bucket = url.removeprefix("s3://").split("/", 1)[0]
        s3 = boto3.client(
            "s3", endpoint_url=storage_env["WEIGHTGATE_S3_ENDPOINT_URL"], region_name="us-east-1"
        )
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
        objects = {*expected.values(), *signatures.values()}
        assert keys == sorted(f"weights/sha256/{d}" for d in objects)
    else:
        root = Path(url.removeprefix("file://"))
        stored = sorted(p.name for p in (root / "sha256").rglob("*") if p.is_file())
        assert stored == sorted({*expected.values(), *signatures.values()})
