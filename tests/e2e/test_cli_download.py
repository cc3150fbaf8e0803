"""``weightgate download`` as a subprocess against a live server, on both object stores,
with a TCP proxy that cuts the connection in the middle of a large file.

Filesystem store: the server streams the bytes, so the proxy sits in front of weightgate.
S3 (redirect mode): the bytes come from the presigned URL, so the proxy sits in front of
moto and the server is configured with the proxy as its S3 endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from app.cli.errors import EXIT_INTEGRITY, EXIT_NETWORK
from tests.cli.tcpproxy import TcpProxy, tcp_proxy
from tests.factories.catalogue import publish_release
from tests.fixtures.servers import VENV_BIN
from tests.hfcompat.live import Deployment, deployment

pytestmark = pytest.mark.slow

MODEL = "acme/big"
BIG = "model-00001-of-00001.safetensors"
BIG_BYTES = os.urandom(24 * 1024 * 1024 + 123)
SMALL = {f"extra/part-{i}.bin": os.urandom(200_000 + i) for i in range(6)}
CUT_AT = 6 * 1024 * 1024


@dataclass
class Setup:
    dep: Deployment
    proxy: TcpProxy
    client_url: str  # what the CLI is pointed at
    key: str


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp(f"cli-{request.param}")
    past = datetime.now(UTC) - timedelta(days=1)
    if request.param == "s3":
        moto = request.getfixturevalue("s3_endpoint")
        with tcp_proxy(moto) as proxy, deployment(tmp, "s3", s3_endpoint=proxy.url) as dep:
            yield _publish(dep, proxy, dep.url, past)
    else:
        with deployment(tmp, "filesystem") as dep, tcp_proxy(dep.url) as proxy:
            yield _publish(dep, proxy, proxy.url, past)


def _publish(dep: Deployment, proxy: TcpProxy, client_url: str, past: datetime) -> Setup:
    with dep.client() as http:
        publish_release(
            http,  # type: ignore[arg-type]  # httpx.Client: the same calls as TestClient
            dep.admin_headers,
            model=MODEL,
            components={"weights": [("research", past)], "extra": [("research", past)]},
            files={BIG: ("weights", BIG_BYTES), **{p: ("extra", d) for p, d in SMALL.items()}},
        )
    user_id, key = dep.create_user(f"cli-{dep.storage}@example.org")
    dep.grant(user_id, MODEL)
    return Setup(dep, proxy, client_url, key)


def weightgate(setup: Setup, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **setup.dep.env,
        "WEIGHTGATE_URL": setup.client_url,
        "WEIGHTGATE_TOKEN": setup.key,
        "XDG_CONFIG_HOME": str(tmp / "config"),
    }
    return subprocess.run(
        [str(VENV_BIN / "weightgate"), *args],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_cut_connection_leaves_a_partial_file_the_next_run_resumes(
    setup: Setup, tmp_path: Path
) -> None:
    setup.proxy.reset_counters()
    drops = setup.proxy.drops  # the proxy is the module's: other tests cut connections too
    setup.proxy.drop_after = CUT_AT
    first = weightgate(setup, tmp_path, "download", MODEL, "-c", "weights", "--to", "out",
                       "--retries", "0", "--plain")  # fmt: skip
    assert first.returncode == EXIT_NETWORK, first.stdout + first.stderr
    assert setup.proxy.drops == drops + 1
    assert "run the same command again to resume" in first.stderr
    part = tmp_path / "out" / (BIG + ".part")
    kept = part.stat().st_size
    assert 0 < kept < len(BIG_BYTES)
    assert part.read_bytes() == BIG_BYTES[:kept]  # only body bytes, no headers, no error page
    assert not (tmp_path / "out" / BIG).exists()

    setup.proxy.reset_counters()
    second = weightgate(setup, tmp_path, "download", MODEL, "-c", "weights", "--to", "out",
                        "--plain")  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    gets = setup.proxy.gets(BIG if setup.dep.storage == "filesystem" else sha(BIG_BYTES))
    assert [g.headers.get("range") for g in gets] == [f"bytes={kept}-"]
    # Only the missing tail crossed the wire the second time.
    assert setup.proxy.bytes_to_clients < len(BIG_BYTES) - kept + 64 * 1024
    assert sha((tmp_path / "out" / BIG).read_bytes()) == sha(BIG_BYTES)
    assert not part.exists()
    assert f"resume  {BIG} at" in second.stderr
    assert "1 resumed" in second.stdout


def test_a_connection_cut_within_a_run_is_retried_from_where_it_stopped(
    setup: Setup, tmp_path: Path
) -> None:
    setup.proxy.reset_counters()
    setup.proxy.drop_after = CUT_AT
    r = weightgate(setup, tmp_path, "download", MODEL, "-c", "weights", "--to", "out", "--plain")
    assert r.returncode == 0, r.stdout + r.stderr
    gets = setup.proxy.gets(BIG if setup.dep.storage == "filesystem" else sha(BIG_BYTES))
    ranges = [g.headers.get("range") for g in gets]
    assert ranges[0] is None
    assert len(ranges) == 2
    assert ranges[1] is not None
    assert ranges[1].startswith("bytes=")
    assert 0 < int(ranges[1][len("bytes=") : -1]) <= CUT_AT
    assert sha((tmp_path / "out" / BIG).read_bytes()) == sha(BIG_BYTES)


def test_parallel_download_of_a_release_then_verify(setup: Setup, tmp_path: Path) -> None:
    r = weightgate(setup, tmp_path, "download", MODEL, "--to", "out", "--parallel", "4")
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out"
    for path, data in {BIG: BIG_BYTES, **SMALL}.items():
        assert sha((out / path).read_bytes()) == sha(data), path
    assert "9 downloaded" in r.stdout  # and the two components' signatures
    pinned = weightgate(setup, tmp_path, "trust", "add", setup.client_url)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    verified = weightgate(setup, tmp_path, "verify", "out")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "9 ok, 0 mismatched, 0 missing" in verified.stdout
    assert "signatures: 7 file(s) verified, 0 not covered, 0 signature(s) failed" in (
        verified.stdout
    )
    record = json.loads((out / ".weightgate/download.json").read_text())
    assert record["model"] == MODEL
    assert set(record["files"]) == {BIG, *SMALL, "signatures/weights.sig", "signatures/extra.sig"}


def test_a_corrupted_stored_object_is_detected_and_not_renamed_into_place(
    setup: Setup, tmp_path: Path
) -> None:
    """Bit rot in the store (a file overwritten in place, or an S3 object replaced behind
    the server's back): the bytes arrive, the SHA-256 check refuses them."""
    victim, data = sorted(SMALL.items())[0]
    with corrupted(setup.dep, sha(data)):
        r = weightgate(setup, tmp_path, "download", MODEL, "-c", "extra", "--to", "out",
                       "--plain")  # fmt: skip
    assert r.returncode == EXIT_INTEGRITY, r.stdout + r.stderr
    assert f"{victim}: SHA-256 mismatch (expected {sha(data)}" in r.stderr
    assert not (tmp_path / "out" / victim).exists()
    assert not (tmp_path / "out" / (victim + ".part")).exists()
    others = [p for p in SMALL if p != victim]
    assert all((tmp_path / "out" / p).read_bytes() == SMALL[p] for p in others)


# Ranges of the big file fetched over parallel connections: 4 ranges of 6 MiB.
SPLIT = ("--parallel", "4", "--min-split-mib", "4")


def ranges_asked(setup: Setup) -> list[tuple[int, int]]:
    # On S3 the object is named by its SHA-256; the component's signature file is fetched
    # through the same proxy, whole.
    key = BIG if setup.dep.storage == "filesystem" else sha(BIG_BYTES)
    gets = setup.proxy.gets(key)
    out = []
    for g in gets:
        first, _, last = g.headers["range"].removeprefix("bytes=").partition("-")
        out.append((int(first), int(last) + 1))
    return sorted(out)


def test_a_large_file_comes_in_parallel_ranges_and_a_cut_one_resumes_in_the_next_run(
    setup: Setup, tmp_path: Path
) -> None:
    setup.proxy.reset_counters()
    drops = setup.proxy.drops
    setup.proxy.drop_after = CUT_AT
    first = weightgate(setup, tmp_path, "download", MODEL, "-c", "weights", "--to", "out",
                       "--retries", "0", "--plain", *SPLIT)  # fmt: skip
    assert first.returncode == EXIT_NETWORK, first.stdout + first.stderr
    assert setup.proxy.drops == drops + 1
    quarter = -(-len(BIG_BYTES) // 4)
    starts = range(0, len(BIG_BYTES), quarter)
    quarters = [(a, min(a + quarter, len(BIG_BYTES))) for a in starts]
    # The file is asked for in quarters; a quarter whose request had not left yet when the
    # cut one failed the run (--retries 0) is left for the next run, like the cut one.
    first_asked = ranges_asked(setup)
    assert first_asked
    assert set(first_asked) <= set(quarters)
    out = tmp_path / "out"
    part = out / (BIG + ".part")
    # A sparse partial file: full length, with the ranges that arrived listed beside it.
    assert part.stat().st_size == len(BIG_BYTES)
    done = json.loads((out / (BIG + ".part.json")).read_text())["done"]
    kept = sum(b - a for a, b in done)
    assert 0 < kept < len(BIG_BYTES)
    data = part.read_bytes()
    assert all(data[a:b] == BIG_BYTES[a:b] for a, b in done)
    assert not (out / BIG).exists()

    setup.proxy.reset_counters()
    second = weightgate(setup, tmp_path, "download", MODEL, "-c", "weights", "--to", "out",
                        "--plain", *SPLIT)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    # Only what was missing was asked for, and crossed the wire.
    missing = sorted(set(range(len(BIG_BYTES))) - {i for a, b in done for i in range(a, b)})
    asked = ranges_asked(setup)
    assert sum(b - a for a, b in asked) == len(missing) == len(BIG_BYTES) - kept
    assert all(a in missing and b - 1 in missing for a, b in asked)
    assert setup.proxy.bytes_to_clients < len(BIG_BYTES) - kept + 64 * 1024
    assert sha((out / BIG).read_bytes()) == sha(BIG_BYTES)
    assert not part.exists()
    assert "1 resumed" in second.stdout


def test_a_corrupted_range_of_a_parallel_download_fails_the_hash(
    setup: Setup, tmp_path: Path
) -> None:
    """One range of the object is wrong (the third quarter): the whole-file SHA-256, fed
    by every range in order, refuses it, and nothing is left to resume from."""
    at = len(BIG_BYTES) // 2 + 1000
    with corrupted(setup.dep, sha(BIG_BYTES), span=(at, at + 100)):
        setup.proxy.reset_counters()
        r = weightgate(setup, tmp_path, "download", MODEL, "-c", "weights", "--to", "out",
                       "--plain", *SPLIT)  # fmt: skip
    assert r.returncode == EXIT_INTEGRITY, r.stdout + r.stderr
    assert len(ranges_asked(setup)) == 4
    assert f"{BIG}: SHA-256 mismatch (expected {sha(BIG_BYTES)}" in r.stderr
    assert not (tmp_path / "out" / BIG).exists()
    assert not (tmp_path / "out" / (BIG + ".part")).exists()
    assert not (tmp_path / "out" / (BIG + ".part.json")).exists()


def _flip(data: bytes, span: tuple[int, int] | None) -> bytes:
    a, b = span or (0, len(data))
    return data[:a] + bytes(x ^ 0xFF for x in data[a:b]) + data[b:]


@contextmanager
def corrupted(dep: Deployment, digest: str, span: tuple[int, int] | None = None) -> Iterator[None]:
    """Flip the bits of the stored object ``digest`` (all of it, or ``span``; same size),
    restore it afterwards."""
    if dep.objects is not None:
        blob = dep.objects / "sha256" / digest[:2] / digest
        original = blob.read_bytes()
        blob.write_bytes(_flip(original, span))
        try:
            yield
        finally:
            blob.write_bytes(original)
        return
    bucket, _, prefix = dep.env["WEIGHTGATE_STORAGE_URL"].removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3", endpoint_url=dep.env["WEIGHTGATE_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    key = f"{prefix}/sha256/{digest}"
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=_flip(original, span))
    try:
        yield
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)
