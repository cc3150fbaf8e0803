"""The Hub routes beyond listing and downloading: whoami-v2, paths-info, and the answer to
everything weightgate does not serve (an error the client can show, never a bare 404)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.hfcompat.errors import INVALID_CREDENTIALS
from app.hfcompat.tree import directory_oid
from tests.factories.catalogue import Published, check, publish_release, sha256
from tests.hfcompat.conftest import CONFIG, MODEL, NESTED, anonymous_view, grant

API = f"/api/models/{MODEL}"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_whoami_names_the_key_holder_and_the_key(
    client: TestClient, researcher: tuple[int, dict[str, str]]
) -> None:
    _, headers = researcher
    me = check(client.get("/api/whoami-v2", headers=headers), 200)
    assert me["type"] == "user"
    assert me["name"] == "ada@example.org"
    token = me["auth"]["accessToken"]
    assert token["role"] == "read"
    assert token["displayName"] == "test"  # the key's name (unnamed keys: their prefix)
    assert me["orgs"] == []


def test_whoami_without_a_valid_token_is_an_invalid_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wg_not-a-key"}):
        r = client.get("/api/whoami-v2", headers=headers)
        assert r.status_code == 401
        assert r.headers["X-Error-Message"] == INVALID_CREDENTIALS


def test_paths_info_answers_files_and_directories_the_caller_may_download(
    client: TestClient, mixed: Published
) -> None:
    # As huggingface_hub sends it: a form with one `paths` field per path.
    body = "paths=config.json&paths=tokenizer&paths=nothing-here&paths=config.json&expand=False"
    got = check(client.post(f"{API}/paths-info/main", content=body, headers=FORM), 200)
    assert [e["path"] for e in got] == ["config.json", "tokenizer"]
    config, folder = got
    assert config["type"] == "file"
    assert config["size"] == len(CONFIG)
    assert config["lfs"]["oid"] == sha256(CONFIG)
    sha = check(client.get(API), 200)["sha"]
    assert folder == {
        "type": "directory",
        "path": "tokenizer",
        "oid": directory_oid(sha, "tokenizer"),
    }
    as_json = client.post(f"{API}/paths-info/v1", json={"paths": ["tokenizer/tokenizer.json"]})
    assert check(as_json, 200)[0]["size"] == len(NESTED)


def test_paths_info_of_only_closed_paths_is_the_releases_gate(
    client: TestClient,
    mixed: Published,
    db: Session,
    clock: FixedClock,
    researcher: tuple[int, dict[str, str]],
) -> None:
    # A closed shard and a missing file get the same answer: paths are not the caller's to know.
    for path in ("model.safetensors", "no-such-file"):
        r = client.post(f"{API}/paths-info/main", content=f"paths={path}", headers=FORM)
        assert r.status_code == 403
        assert r.headers["X-Error-Code"] == "GatedRepo"
        assert "weights" in r.headers["X-Error-Message"]
    user_id, headers = researcher
    grant(db, clock, user_id)
    r = client.post(
        f"{API}/paths-info/main", content="paths=model.safetensors", headers={**FORM, **headers}
    )
    assert [e["path"] for e in check(r, 200)] == ["model.safetensors"]
    # Nothing closed to them any more: a missing path is just left out.
    r = client.post(f"{API}/paths-info/main", content="paths=ghost", headers={**FORM, **headers})
    assert check(r, 200) == []


def test_paths_info_refuses_malformed_and_oversized_bodies(
    client: TestClient, mixed: Published
) -> None:
    r = client.post(f"{API}/paths-info/main", json={"paths": [1, 2]})
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_body"
    many = "&".join(f"paths=f{i}" for i in range(1001))
    r = client.post(f"{API}/paths-info/main", content=many, headers=FORM)
    assert r.status_code == 400
    assert r.json()["code"] == "too_many_paths"


def test_what_weightgate_does_not_serve_is_an_error_the_client_can_show(
    client: TestClient, mixed: Published
) -> None:
    upload = client.post("/api/repos/create", json={"name": "x"})
    assert upload.status_code == 501
    assert upload.headers["X-Error-Code"] == "NotSupported"
    assert "read-only" in upload.headers["X-Error-Message"]
    assert upload.json()["code"] == "not_supported"
    commit = client.post(f"{API}/commit/main", json={})
    assert commit.status_code == 501
    listing = client.get("/api/models")
    assert listing.status_code == 501
    assert "not one weightgate implements" in listing.headers["X-Error-Message"]
    for url in ("/api/datasets/acme/data", "/datasets/acme/data/resolve/main/train.csv"):
        r = client.get(url)
        assert r.status_code == 404
        assert r.headers["X-Error-Code"] == "RepoNotFound"
        assert "models only" in r.headers["X-Error-Message"]


def test_auth_check_passes_only_when_everything_is_open_to_the_caller(
    client: TestClient,
    mixed: Published,
    db: Session,
    clock: FixedClock,
    researcher: tuple[int, dict[str, str]],
) -> None:
    user_id, headers = researcher
    closed = client.get(f"{API}/auth-check", headers=headers)
    assert closed.status_code == 403
    assert closed.headers["X-Error-Code"] == "GatedRepo"
    assert "weights needs an approved access request" in closed.headers["X-Error-Message"]
    assert "opens to everyone at 2026-07-01T12:00:00+00:00" in closed.headers["X-Error-Message"]
    grant(db, clock, user_id)
    assert check(client.get(f"{API}/auth-check", headers=headers), 200) == {
        "id": MODEL,
        "sha": mixed.revision,
        "version": "v1",
    }
    assert client.get("/api/models/acme/ghost/auth-check").headers["X-Error-Code"] == (
        "RepoNotFound"
    )
    assert client.get(f"{API}/auth-check/write", headers=headers).status_code == 501


def test_refs_are_the_releases_as_tags_and_main_pointing_at_what_the_caller_sees(
    client: TestClient,
    mixed: Published,
    admin_headers: dict[str, str],
    clock: FixedClock,
    db: Session,
    researcher: tuple[int, dict[str, str]],
) -> None:
    clock.advance(seconds=1)
    v2 = publish_release(
        client,
        admin_headers,
        model=MODEL,
        version="v2",
        create=False,
        components={"config": [("open", clock.now() - timedelta(hours=1))]},
        files={"config.json": ("config", b"{}")},
    )
    refs = check(client.get(f"{API}/refs"), 200)
    assert refs["branches"] == [
        {"name": "main", "ref": "refs/heads/main", "targetCommit": v2.revision}
    ]
    assert refs["tags"] == [
        {"name": "v2", "ref": "refs/tags/v2", "targetCommit": v2.revision},
        {"name": "v1", "ref": "refs/tags/v1", "targetCommit": anonymous_view(mixed)},
    ]
    assert (refs["converts"], refs["pullRequests"]) == ([], [])
    user_id, headers = researcher
    grant(db, clock, user_id)
    tags = check(client.get(f"{API}/refs", headers=headers), 200)["tags"]
    assert tags[1]["targetCommit"] == mixed.revision  # all of v1 is open to them now


def test_commits_are_one_per_release_or_view_and_say_which(
    client: TestClient, mixed: Published, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    clock.advance(seconds=1)
    v2 = publish_release(
        client,
        admin_headers,
        model=MODEL,
        version="v2",
        create=False,
        components={"config": [("open", clock.now() - timedelta(hours=1))]},
        files={"config.json": ("config", b"{}")},
    )
    main = check(client.get(f"{API}/commits/main"), 200)
    assert [c["id"] for c in main] == [v2.revision, anonymous_view(mixed)]
    assert main[0]["title"] == "Release v2"
    assert main[1]["title"] == "Release v1, the part open to you"
    assert "The files of config in release v1" in main[1]["message"]
    assert f"The whole release is revision {mixed.revision}" in main[1]["message"]
    assert main[1]["authors"] == [{"user": "weightgate"}]
    # From an older commit: it, and nothing published after it.
    old = check(client.get(f"{API}/commits/{mixed.revision}"), 200)
    assert [c["id"] for c in old] == [mixed.revision]
    assert old[0]["title"] == "Release v1"
    r = client.get(f"{API}/commits/v9")
    assert (r.status_code, r.headers["X-Error-Code"]) == (404, "RevisionNotFound")
    r = client.get("/api/models/acme/ghost/refs")
    assert (r.status_code, r.headers["X-Error-Code"]) == (404, "RepoNotFound")
