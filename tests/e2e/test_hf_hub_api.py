"""The real ``huggingface_hub`` and ``hf`` against a live server: a snapshot taken before a
grant or a lift is followed by one with the weights (the client caches a commit's file list
for good, app/hfcompat/views.py), with and without ``--local-dir`` and with a pinned
revision; logging in with an API key, paths-info, the reasons a closed file gives on the
user's screen, the partial-snapshot warning, and the answer to what weightgate does not
serve."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huggingface_hub import HfApi, HfFileSystem, snapshot_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError
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
        publish_view_models(dep)
        yield dep


VIEW_FILES = {
    "config.json": ("config", b'{"architectures": ["Tiny"]}'),
    "model.safetensors": ("weights", os.urandom(64 * 1024)),
}
# acme/granted: weights for approved researchers now; acme/lifted: weights research-only
# now and open in a month, until an admin lifts them, one per way of downloading.
GRANTED = "acme/granted"
OPEN_TO_ALL = NOW + timedelta(days=30)
LIFTED = {"cache": "acme/lifted-cache", "local-dir": "acme/lifted-local"}


def publish_view_models(dep: Deployment) -> None:
    with dep.client() as http:
        for model in (GRANTED, *LIFTED.values()):
            publish_release(
                http,  # type: ignore[arg-type]
                dep.admin_headers,
                model=model,
                components={
                    "config": [("open", PAST)],
                    "weights": [("research", PAST), ("open", OPEN_TO_ALL)],
                },
                files=VIEW_FILES,
            )


def files_in(folder: Path) -> dict[str, bytes]:
    """The uploaded files of a snapshot. Each component's signature file comes along
    (signatures/<component>.sig, #22): one per component present, checked here, then left
    out, since the tests below are about which uploaded files a view holds."""
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(folder).parts
    }
    signatures = {p for p in files if p.startswith("signatures/")}
    components = {VIEW_FILES[p][0] for p in files if p not in signatures}
    assert signatures == {f"signatures/{c}.sig" for c in components}
    return {p: data for p, data in files.items() if p not in signatures}


EVERYTHING = {path: data for path, (_, data) in VIEW_FILES.items()}
CONFIG_ONLY = {"config.json": VIEW_FILES["config.json"][1]}


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
    with pytest.raises(HfHubHTTPError) as exc:
        api.auth_check("acme/tiny")
    assert f"weights is under embargo until {OPENS.isoformat()}" in str(exc.value)


def test_hf_download_of_an_embargoed_file_says_embargoed_and_when(
    hub: Deployment, approved: str, tmp_path: Path
) -> None:
    # With --force-download the client replaces any refusal by "Force download failed due
    # to the above error": the refusal's X-HF-Warning is then what says why.
    for force in ([], ["--force-download"]):
        out = hf(
            hub, tmp_path, "download", "acme/tiny", "model.safetensors", *force, token=approved
        )
        assert out.returncode != 0
        screen = out.stdout + out.stderr
        assert "requires approval" not in screen
        assert f"weights is under embargo until {OPENS.isoformat()}" in screen, screen
        assert f"safety is under embargo until {SAFETY_OPENS.isoformat()}" in screen


def test_hf_download_of_a_gated_file_says_how_to_ask_and_when_it_opens(
    hub: Deployment, tmp_path: Path
) -> None:
    """For GatedRepo `hf` prints its own "requires approval" and drops the server's message;
    the refusal's warning still puts the command to run and the date on the screen."""
    out = hf(hub, tmp_path, "download", GRANTED, "model.safetensors")
    assert out.returncode != 0
    screen = out.stdout + out.stderr
    assert "requires approval" in screen
    assert (
        f"weights needs an approved access request (weightgate request-access {GRANTED}); "
        f"it opens to everyone at {OPEN_TO_ALL.isoformat()}"
    ) in screen


SCREEN = """
import sys, traceback
from huggingface_hub import HfFileSystem, hf_hub_download
endpoint, token, cache = sys.argv[1:4]
def attempt(label, call):
    print(f"== {label}", file=sys.stderr, flush=True)
    try:
        call()
    except Exception:
        traceback.print_exc()  # what an uncaught error shows
attempt("hf_hub_download", lambda: hf_hub_download(
    "acme/tiny", "model.safetensors", endpoint=endpoint, token=token, cache_dir=cache))
attempt("fs", lambda: HfFileSystem(endpoint=endpoint, token=token).open(
    "acme/tiny/model.safetensors"))
attempt("fs-expand", lambda: HfFileSystem(endpoint=endpoint, token=token, expand_info=True).open(
    "acme/tiny/model.safetensors"))
"""


def test_the_python_client_shows_why_a_top_level_file_is_closed(
    hub: Deployment, approved: str, tmp_path: Path
) -> None:
    """What a researcher's screen shows, in one fresh process (the client shows a warning
    topic once per process), for a closed file at the top of the repository."""
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c", SCREEN, hub.url, approved, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    _, download, fs, expand = out.stderr.split("== ")
    why = (
        f"weights is under embargo until {OPENS.isoformat()}; "
        f"safety is under embargo until {SAFETY_OPENS.isoformat()}"
    )
    # hf_hub_download wraps the 403 in a LocalEntryNotFoundError about the connection: the
    # refusal's warning comes first, and the 403 it wraps says it again.
    assert download.splitlines()[1] == f"release v1 of acme/tiny is not open to you: {why}"
    assert "LocalEntryNotFoundError" in download
    assert f"403 Forbidden: release v1 of acme/tiny is not open to you: {why}" in download
    # HfFileSystem decides "missing" from the parent's listing, which holds only what the
    # caller may download: a bare FileNotFoundError, after the model info's warning.
    assert fs.splitlines()[1] == (
        f"files of acme/tiny@v1 that are not open to you were left out: {why}"
    )
    assert fs.rstrip().endswith("FileNotFoundError: acme/tiny/model.safetensors")
    # With expand_info it asks paths-info, whose answer is the release's refusal.
    assert "FileNotFoundError" not in expand
    assert f"403 Forbidden: release v1 of acme/tiny is not open to you: {why}" in expand


def test_a_partial_snapshot_warns_again_when_its_file_list_comes_from_the_cache(
    hub: Deployment, approved: str, tmp_path: Path
) -> None:
    """The second run lists nothing (the commit's file list is cached): the model info it
    asks for carries the warning."""
    for _ in range(2):
        out = hf(hub, tmp_path, "download", "acme/other", token=approved)
        assert out.returncode == 0, out.stderr
        assert (
            "files of acme/other@v1 that are not open to you were left out: "
            f"weights is under embargo until {OPENS.isoformat()}"
        ) in out.stderr


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
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    print(model, sorted(n for n in names if not n.startswith("signatures/")), file=sys.stderr)
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


@pytest.mark.parametrize("local_dir", [False, True], ids=["cache", "local-dir"])
def test_a_snapshot_after_a_grant_has_the_weights(
    hub: Deployment, tmp_path: Path, local_dir: bool
) -> None:
    """Before the fix the second call answered from `trees/<commit>.json`, the list cached
    by the first: "complete", without the weights."""
    _, key = hub.create_user(f"views-{local_dir}@example.org")
    api = HfApi(endpoint=hub.url, token=key)

    def snapshot() -> Path:
        return Path(
            snapshot_download(
                GRANTED,
                endpoint=hub.url,
                token=key,
                cache_dir=tmp_path / "cache",
                local_dir=tmp_path / "dl" if local_dir else None,
            )
        )

    before = snapshot()
    assert files_in(before) == CONFIG_ONLY
    partial = api.model_info(GRANTED).sha

    hub.approve(key, GRANTED)
    after = snapshot()
    assert files_in(after) == EVERYTHING
    info = api.model_info(GRANTED)
    assert info.sha != partial
    assert info.sha == info.weightgate["release_revision"]  # type: ignore[attr-defined]
    if not local_dir:
        assert after.name == info.sha


@pytest.mark.parametrize("how", ["cache", "local-dir"])
def test_a_snapshot_after_a_lift_has_the_weights(hub: Deployment, tmp_path: Path, how: str) -> None:
    model = LIFTED[how]

    def snapshot() -> Path:
        return Path(
            snapshot_download(
                model,
                endpoint=hub.url,
                token=False,
                cache_dir=tmp_path / "cache",
                local_dir=tmp_path / "dl" if how == "local-dir" else None,
            )
        )

    before = snapshot()
    assert files_in(before) == CONFIG_ONLY
    with hub.client() as http:
        lifted = http.post(
            f"/v1/models/{model}/releases/v1/components/weights/schedule/lift",
            json={"tier": "open"},
            headers=hub.admin_headers,
        )
        assert lifted.status_code == 200, lifted.text
    after = snapshot()
    assert files_in(after) == EVERYTHING


def test_a_pinned_revision_is_the_whole_release_or_says_where_the_open_part_is(
    hub: Deployment, tmp_path: Path
) -> None:
    _, key = hub.create_user("pinned@example.org")
    api = HfApi(endpoint=hub.url, token=key)
    pinned = api.model_info(GRANTED).weightgate["release_revision"]  # type: ignore[attr-defined]
    cache = tmp_path / "cache"
    # A partial listing would be cached as the whole commit: refused, saying why and where.
    with pytest.raises(GatedRepoError) as exc:
        snapshot_download(GRANTED, revision=pinned, endpoint=hub.url, token=key, cache_dir=cache)
    assert "weights needs an approved access request" in str(exc.value)
    assert "the files open to you now are at revision 'v1'" in str(exc.value)
    view = api.model_info(GRANTED, revision="v1").sha
    assert view is not None
    partial = Path(
        snapshot_download(GRANTED, revision=view, endpoint=hub.url, token=key, cache_dir=cache)
    )
    assert files_in(partial) == CONFIG_ONLY

    hub.approve(key, GRANTED)
    whole = Path(
        snapshot_download(GRANTED, revision=pinned, endpoint=hub.url, token=key, cache_dir=cache)
    )
    assert whole.name == pinned
    assert files_in(whole) == EVERYTHING
    # A view id stays what it was (a commit is immutable): the config, from the cache.
    again = Path(
        snapshot_download(GRANTED, revision=view, endpoint=hub.url, token=key, cache_dir=cache)
    )
    assert files_in(again) == CONFIG_ONLY
