"""The Hub routes beyond listing and downloading: whoami-v2, paths-info, and the answer to
everything weightgate does not serve (an error the client can show, never a bare 404)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.hfcompat.errors import INVALID_CREDENTIALS
from app.hfcompat.tree import directory_oid
from tests.factories.catalogue import Published, check, sha256
from tests.hfcompat.conftest import CONFIG, MODEL, NESTED, grant

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
