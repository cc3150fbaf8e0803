"""The real ``huggingface_hub`` client against a live server, on both object stores.

On the filesystem store ``/resolve`` streams the bytes; on S3 (default redirect mode) it
answers 302 to a presigned moto URL that the client must not follow with our headers lost.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from tests.factories.catalogue import publish_release
from tests.fixtures.servers import VENV_BIN
from tests.hfcompat.live import Deployment, deployment

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=30)
FILES = {
    "config.json": ("config", b'{"architectures": ["Atlas"]}'),
    "tokenizer/tokenizer.json": ("config", b'{"model": {"vocab": {}}}'),
    "model-00001-of-00002.safetensors": ("weights", os.urandom(3 * 1024 * 1024 + 17)),
    "model-00002-of-00002.safetensors": ("weights", os.urandom(1024 * 1024)),
}


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    endpoint = request.getfixturevalue("s3_endpoint") if request.param == "s3" else None
    tmp = tmp_path_factory.mktemp(f"hub-{request.param}")
    with deployment(tmp, request.param, s3_endpoint=endpoint) as dep:
        with dep.client() as http:
            publish_release(
                http,  # type: ignore[arg-type]  # httpx.Client: the same calls as TestClient
                dep.admin_headers,
                model="acme/open",
                components={"config": [("open", PAST)], "weights": [("open", PAST)]},
                files=FILES,
            )
            publish_release(
                http,  # type: ignore[arg-type]
                dep.admin_headers,
                model="acme/gated",
                components={
                    "config": [("open", PAST)],
                    "weights": [("research", PAST), ("open", FUTURE)],
                },
                files=FILES,
            )
            publish_release(
                http,  # type: ignore[arg-type]
                dep.admin_headers,
                model="acme/research-only",
                components={"weights": [("research", PAST)]},
                files={"model.safetensors": ("weights", b"w" * 4096)},
            )
        yield dep


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def signatures_of(files: dict[str, tuple[str, bytes]]) -> set[str]:
    """Each component's signature file comes down with it (app/signing)."""
    return {f"signatures/{component}.sig" for component, _ in files.values()}


def assert_identical(folder: Path, files: dict[str, tuple[str, bytes]]) -> None:
    got = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert got == set(files) | signatures_of(files)
    for path, (_, data) in files.items():
        assert sha(folder / path) == hashlib.sha256(data).hexdigest(), path


def test_snapshot_of_an_open_model_is_identical_and_the_second_call_is_cached(
    hub: Deployment, tmp_path: Path
) -> None:
    cache = tmp_path / "hf-cache"
    before = hub.count_events("hf.resolve")
    folder = Path(snapshot_download("acme/open", endpoint=hub.url, cache_dir=cache, token=False))
    assert_identical(folder, FILES)
    # One HEAD and one GET per file: on S3 the GET is answered with a redirect (a HEAD
    # hands out no URL, app/hfcompat/router.py).
    per_file = 2
    after_first = hub.count_events("hf.resolve")
    assert after_first - before == per_file * (len(FILES) + len(signatures_of(FILES)))
    info = HfApi(endpoint=hub.url, token=False).model_info("acme/open")
    assert folder.name == info.sha

    # Second call, online: the client answers from its cache; no resolve reaches the server.
    again = Path(snapshot_download("acme/open", endpoint=hub.url, cache_dir=cache, token=False))
    assert again == folder
    assert hub.count_events("hf.resolve") == after_first
    assert_identical(again, FILES)


def test_a_pinned_revision_works_and_is_served_from_cache_without_any_request(
    hub: Deployment, tmp_path: Path
) -> None:
    api = HfApi(endpoint=hub.url, token=False)
    revision = api.model_info("acme/open", revision="v1").sha
    assert revision is not None
    cache = tmp_path / "hf-cache"
    folder = Path(
        snapshot_download(
            "acme/open", revision=revision, endpoint=hub.url, cache_dir=cache, token=False
        )
    )
    assert folder.name == revision
    assert_identical(folder, FILES)
    resolves = hub.count_events("hf.resolve")
    # Stop the world: an unreachable endpoint proves the pinned second call needs no server.
    offline = Path(
        snapshot_download(
            "acme/open",
            revision=revision,
            endpoint="http://127.0.0.1:9",
            cache_dir=cache,
            token=False,
        )
    )
    assert offline == folder
    assert hub.count_events("hf.resolve") == resolves


def test_a_model_gated_to_the_caller_raises_gated_repo_error(
    hub: Deployment, tmp_path: Path
) -> None:
    with pytest.raises(GatedRepoError) as exc:
        snapshot_download(
            "acme/research-only", endpoint=hub.url, cache_dir=tmp_path / "c1", token=False
        )
    assert "weightgate request-access acme/research-only" in str(exc.value)
    # A researcher without a grant is gated too; with one, the file arrives.
    user_id, key = hub.create_user(f"r-{hub.storage}@example.org")
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            "acme/gated",
            "model-00001-of-00002.safetensors",
            endpoint=hub.url,
            cache_dir=tmp_path / "c2",
            token=key,
        )
    hub.grant(user_id, "acme/gated")
    folder = Path(
        snapshot_download("acme/gated", endpoint=hub.url, cache_dir=tmp_path / "c3", token=key)
    )
    assert_identical(folder, FILES)


def test_partially_open_model_gives_the_open_files_only(hub: Deployment, tmp_path: Path) -> None:
    folder = Path(
        snapshot_download("acme/gated", endpoint=hub.url, cache_dir=tmp_path / "c", token=False)
    )
    assert_identical(folder, {p: v for p, v in FILES.items() if v[0] == "config"})


def test_unknown_repo_is_repository_not_found(hub: Deployment, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError) as exc:
        snapshot_download("acme/ghost", endpoint=hub.url, cache_dir=tmp_path, token=False)
    assert not isinstance(exc.value, GatedRepoError)


def test_hf_cli_downloads_with_an_api_key_as_hf_token(hub: Deployment, tmp_path: Path) -> None:
    """`HF_ENDPOINT=… hf download` exactly as a researcher runs it."""
    user_id, key = hub.create_user(f"cli-{hub.storage}@example.org")
    hub.grant(user_id, "acme/gated")
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": key,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    out = subprocess.run(
        [str(VENV_BIN / "hf"), "download", "acme/gated", "--local-dir", str(tmp_path / "dl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert_identical_local(tmp_path / "dl", FILES)


def assert_identical_local(folder: Path, files: dict[str, tuple[str, bytes]]) -> None:
    # --local-dir keeps its metadata under .cache/huggingface/; compare the model files only.
    got = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(folder).parts
    }
    assert got == set(files) | signatures_of(files)
    for path, (_, data) in files.items():
        assert sha(folder / path) == hashlib.sha256(data).hexdigest(), path
