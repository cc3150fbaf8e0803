"""The real ``huggingface_hub`` and ``hf`` against a live server, for what is not a download:
logging in with an API key, paths-info, the reasons a closed file gives on the user's
screen, the partial-snapshot warning, and the answer to what weightgate does not serve."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huggingface_hub import HfApi, HfFileSystem
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import RepoFile

from tests.factories.catalogue import publish_release
from tests.fixtures.servers import VENV_BIN
from tests.hfcompat.live import Deployment, deployment

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(microsecond=0)
PAST = NOW - timedelta(days=1)
OPENS = NOW + timedelta(days=20)  # weights open to approved researchers
SAFETY_OPENS = NOW + timedelta(days=40)
FILES = {
    "config.json": ("config", b'{"architectures": ["Tiny"]}'),
    "model.safetensors": ("weights", b"w" * 4096),
    "safety/classifier.bin": ("safety", b"s" * 512),
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory.mktemp("hub-api"), "filesystem") as dep:
        with dep.client() as http:
            for model in ("acme/tiny", "acme/other"):
                publish_release(
                    http,  # type: ignore[arg-type]  # httpx.Client: the same calls as TestClient
                    dep.admin_headers,
                    model=model,
                    components={
                        "config": [("open", PAST)],
                        "weights": [("partner", PAST), ("research", OPENS)],
                        "safety": [("partner", PAST), ("research", SAFETY_OPENS)],
                    },
                    files=FILES,
                )
        yield dep


@pytest.fixture(scope="module")
def approved(hub: Deployment) -> str:
    """An approved researcher's API key: the weights are still embargoed to them."""
    user_id, key = hub.create_user("approved@example.org")
    hub.grant(user_id, "acme/tiny")
    hub.grant(user_id, "acme/other")
    return key


def hf(
    hub: Deployment, home: Path, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_COLOR": "1",
    }
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [str(VENV_BIN / "hf"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_hf_auth_login_saves_an_api_key_and_whoami_names_its_holder(
    hub: Deployment, tmp_path: Path
) -> None:
    _, key = hub.create_user("login@example.org")
    login = hf(hub, tmp_path, "auth", "login", "--token", key)
    assert login.returncode == 0, login.stderr
    assert (tmp_path / "token").read_text().strip() == key
    # Saved under the key's name (`admin create-user` names it "initial").
    assert "[initial]" in (tmp_path / "stored_tokens").read_text()
    who = hf(hub, tmp_path, "auth", "whoami")
    assert who.returncode == 0, who.stderr
    assert "login@example.org" in who.stdout
    bad = hf(hub, tmp_path / "other", "auth", "login", "--token", "wg_not-a-real-key")
    assert bad.returncode != 0
    assert "Invalid user token" in bad.stdout + bad.stderr


def test_get_paths_info_answers_what_the_caller_may_download(
    hub: Deployment, approved: str
) -> None:
    api = HfApi(endpoint=hub.url, token=approved)
    got = api.get_paths_info("acme/tiny", ["config.json", "model.safetensors", "ghost"])
    assert [(type(e), e.path) for e in got] == [(RepoFile, "config.json")]
    config = got[0]
    assert isinstance(config, RepoFile)
    assert config.lfs is not None
    assert config.size == len(FILES["config.json"][1])


def test_hf_download_of_an_embargoed_file_says_embargoed_and_when(
    hub: Deployment, approved: str, tmp_path: Path
) -> None:
    out = hf(hub, tmp_path, "download", "acme/tiny", "model.safetensors", token=approved)
    assert out.returncode != 0
    screen = out.stdout + out.stderr
    assert "requires approval" not in screen
    assert f"weights is under embargo until {OPENS.isoformat()}" in screen
    assert f"safety is under embargo until {SAFETY_OPENS.isoformat()}" in screen


def test_listing_a_closed_directory_names_the_components_reason(
    hub: Deployment, approved: str
) -> None:
    api = HfApi(endpoint=hub.url, token=approved)
    with pytest.raises(HfHubHTTPError) as exc:
        list(api.list_repo_tree("acme/tiny", path_in_repo="safety"))
    assert exc.value.response.status_code == 403
    assert f"safety is under embargo until {SAFETY_OPENS.isoformat()}" in str(exc.value)
    assert "release v1 of acme/tiny is under embargo" not in str(exc.value)


def test_hf_file_system_on_a_closed_file_gives_the_reason(hub: Deployment, approved: str) -> None:
    fs = HfFileSystem(endpoint=hub.url, token=approved)
    assert fs.cat_file("acme/tiny/config.json") == FILES["config.json"][1]
    with pytest.raises(HfHubHTTPError) as exc:
        fs.cat_file("acme/tiny/safety/classifier.bin")
    assert not isinstance(exc.value, FileNotFoundError)
    assert f"safety is under embargo until {SAFETY_OPENS.isoformat()}" in str(exc.value)


SNAPSHOTS = """
import sys
from pathlib import Path
from huggingface_hub import snapshot_download
endpoint, token, cache = sys.argv[1:4]
for model in ("acme/tiny", "acme/other"):
    folder = Path(snapshot_download(model, endpoint=endpoint, cache_dir=cache, token=token))
    print(model, sorted(p.name for p in folder.rglob("*") if p.is_file()), file=sys.stderr)
"""


def test_each_partial_snapshot_warns_with_every_closed_component(
    hub: Deployment, approved: str, tmp_path: Path
) -> None:
    """The client shows a topic's first warning only, once per process: in one process, a
    second model's partial snapshot still warns, naming every closed component."""
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c", SNAPSHOTS, hub.url, approved, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for model in ("acme/tiny", "acme/other"):
        assert f"{model} ['config.json']" in out.stderr
        warning = out.stderr.split(f"files of {model}@v1 that are not open to you were left out")
        assert len(warning) == 2, out.stderr
        line = warning[1].splitlines()[0]
        assert f"weights is under embargo until {OPENS.isoformat()}" in line
        assert f"safety is under embargo until {SAFETY_OPENS.isoformat()}" in line


def test_what_weightgate_does_not_serve_says_so(hub: Deployment, approved: str) -> None:
    api = HfApi(endpoint=hub.url, token=approved)
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo("acme/new")
    assert exc.value.response.status_code == 501
    assert "read-only to Hugging Face clients" in str(exc.value)
