"""The Hub's metadata routes: model info, revisions, the tree listing, and their errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import ANY

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.hfcompat.tree import git_blob_id, lfs_pointer
from tests.factories.catalogue import Published, check, publish_release, sha256, signature_files
from tests.hfcompat.conftest import CONFIG, MODEL, NESTED, WEIGHTS, anonymous_view, grant

API = f"/api/models/{MODEL}"


def sibling(path: str, data: bytes) -> dict[str, Any]:
    pointer = lfs_pointer(sha256(data), len(data))
    return {
        "rfilename": path,
        "size": len(data),
        "blobId": git_blob_id(pointer),
        "lfs": {"size": len(data), "sha256": sha256(data), "pointerSize": len(pointer)},
    }


def test_model_info_lists_only_files_open_to_anonymous_and_says_gated(
    client: TestClient, mixed: Published
) -> None:
    r = client.get(API)
    info = check(r, 200)
    # The tree's warning (below) is on the model info too: a second snapshot of the same
    # view reads the file list from the client's cache and asks only for this.
    assert r.headers["X-HF-Warning"] == client.get(f"{API}/tree/main").headers["X-HF-Warning"]
    assert "weights needs an approved access request" in r.headers["X-HF-Warning"]
    assert info["id"] == MODEL
    # The commit of what anonymous callers see (app/hfcompat/views.py), not the release's.
    assert info["sha"] == anonymous_view(mixed)
    assert info["weightgate"]["release_revision"] == mixed.revision
    assert info["gated"] == "manual"
    assert info["private"] is False
    # Each component's signature file comes with it (app/signing), so `hf download` fetches it.
    sig = signature_files(client, {})["signatures/config.sig"]
    assert info["siblings"] == [
        sibling("config.json", CONFIG),
        {**sibling("signatures/config.sig", b""), "size": sig["size"], "blobId": ANY, "lfs": ANY},
        sibling("tokenizer/tokenizer.json", NESTED),
    ]
    assert info["siblings"][1]["lfs"]["sha256"] == sig["sha256"]
    weights = next(c for c in info["weightgate"]["components"] if c["name"] == "weights")
    assert weights["downloadable"] is False
    assert weights["tier"] == "research"
    assert weights["opens_to_you_at"] == "2026-07-01T12:00:00Z"


def test_granted_researcher_sees_every_file_and_no_gate(
    client: TestClient,
    mixed: Published,
    db: Session,
    clock: FixedClock,
    researcher: tuple[int, dict[str, str]],
) -> None:
    user_id, headers = researcher
    grant(db, clock, user_id)
    r = client.get(API, headers=headers)
    info = check(r, 200)
    assert info["gated"] is False
    assert "X-HF-Warning" not in r.headers
    assert [s["rfilename"] for s in info["siblings"]] == [
        "config.json",
        "model.safetensors",
        "signatures/config.sig",
        "signatures/weights.sig",
        "tokenizer/tokenizer.json",
    ]
    assert info["weightgate"]["clearance"] == "research"
    signatures = sum(f["size"] for f in signature_files(client, headers).values())
    assert info["usedStorage"] == len(CONFIG) + len(WEIGHTS) + len(NESTED) + signatures


def test_auto_approve_models_report_gated_auto(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        model="acme/auto",
        components={"weights": [("research", clock.now() - timedelta(hours=1))]},
    )
    client.patch("/v1/models/acme/auto", json={"auto_approve": True}, headers=admin_headers)
    # Nothing is open to anonymous callers: the model is announced but fully gated.
    assert check(client.get("/api/models/acme/auto"), 200)["gated"] == "auto"


def test_revision_by_version_revision_id_and_main(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, mixed: Published
) -> None:
    v2 = publish_release(
        client,
        admin_headers,
        model=MODEL,
        version="v2",
        create=False,
        components={"config": [("open", clock.now() - timedelta(hours=1))]},
        files={"config.json": ("config", b"{}")},
    )
    assert check(client.get(f"{API}/revision/v1"), 200)["sha"] == anonymous_view(mixed)
    assert check(client.get(f"{API}/revision/{mixed.revision}"), 200)["sha"] == mixed.revision
    assert check(client.get(f"{API}/revision/main"), 200)["sha"] == v2.revision
    assert check(client.get(API), 200)["sha"] == v2.revision
    old = check(client.get(f"{API}/revision/{mixed.revision}"), 200)
    assert {s["rfilename"] for s in old["siblings"]} == {
        "config.json",
        "signatures/config.sig",
        "tokenizer/tokenizer.json",
    }


def test_unknown_and_hidden_models_are_the_same_repo_not_found(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        model="acme/secret",
        components={"weights": [("open", clock.now() + timedelta(days=9))]},
    )
    for path in ("/api/models/acme/secret", "/api/models/acme/nope/revision/main"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.headers["X-Error-Code"] == "RepoNotFound"
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "model_not_found"
    assert r.json()["detail"] == "model acme/nope not found"
    # The admin sees it (internal clearance) and the schedule that hides it.
    info = check(client.get("/api/models/acme/secret", headers=admin_headers), 200)
    assert [s["rfilename"] for s in info["siblings"]] == [
        "model.safetensors",
        "signatures/weights.sig",
    ]


def test_unknown_revision_and_drafts_are_revision_not_found(
    client: TestClient, admin_headers: dict[str, str], mixed: Published
) -> None:
    check(
        client.post(f"/v1/models/{MODEL}/releases", json={"version": "v9"}, headers=admin_headers),
        201,
    )
    for rev in ("v7", "0" * 40, "v9", "refs/pr/1"):
        r = client.get(f"{API}/revision/{rev}", headers=admin_headers)
        assert r.status_code == 404, rev
        assert r.headers["X-Error-Code"] == "RevisionNotFound"
        assert r.json()["code"] == "release_not_found"


def test_tree_recursive_lists_files_as_lfs_and_directories(
    client: TestClient, mixed: Published
) -> None:
    sha = check(client.get(API), 200)["sha"]  # as snapshot_download asks, then lists
    assert sha == anonymous_view(mixed)
    r = client.get(f"{API}/tree/{sha}", params={"recursive": "true"})
    entries = check(r, 200)
    assert [(e["type"], e["path"]) for e in entries] == [
        ("file", "config.json"),
        ("directory", "signatures"),
        ("file", "signatures/config.sig"),
        ("directory", "tokenizer"),
        ("file", "tokenizer/tokenizer.json"),
    ]
    config = entries[0]
    assert config["size"] == len(CONFIG)
    assert config["lfs"] == {
        "oid": sha256(CONFIG),
        "size": len(CONFIG),
        "pointerSize": len(lfs_pointer(sha256(CONFIG), len(CONFIG))),
    }
    assert len(entries[3]["oid"]) == 40
    # Weights are left out for anonymous callers, and the client is told which components
    # are closed and when they open; never how many files they hold (app/disclosure.py).
    warning = r.headers["X-HF-Warning"]
    # One topic per repository and revision: the client shows each topic once per process.
    assert warning.startswith(f"weightgate-closed {MODEL}@{anonymous_view(mixed)}; ")
    assert (
        "weights needs an approved access request (weightgate request-access acme/atlas-7b); "
        "it opens to everyone at 2026-07-01T12:00:00+00:00" in warning
    )
    assert "1 file" not in warning


def test_tree_without_recursion_and_below_a_directory(
    client: TestClient,
    mixed: Published,
    db: Session,
    clock: FixedClock,
    researcher: tuple[int, dict[str, str]],
) -> None:
    top = check(client.get(f"{API}/tree/v1"), 200)
    assert [(e["type"], e["path"]) for e in top] == [
        ("file", "config.json"),
        ("directory", "signatures"),
        ("directory", "tokenizer"),
    ]
    sub = check(client.get(f"{API}/tree/main/tokenizer"), 200)
    assert [e["path"] for e in sub] == ["tokenizer/tokenizer.json"]
    # The client quotes the path with safe="" (tokenizer%2Fx): the same route answers. For
    # anonymous callers the release is gated (weights are closed to them): any directory
    # they may not list is GatedRepo; with nothing closed, a missing one is EntryNotFound.
    r = client.get(f"{API}/tree/main/tokenizer%2Fmissing")
    assert (r.status_code, r.headers["X-Error-Code"]) == (403, "GatedRepo")
    user_id, headers = researcher
    grant(db, clock, user_id)
    r = client.get(f"{API}/tree/main/tokenizer%2Fmissing", headers=headers)
    assert r.status_code == 404
    assert r.headers["X-Error-Code"] == "EntryNotFound"
    assert r.headers["X-Repo-Commit"] == mixed.revision


def test_tree_pages_follow_the_link_header(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    files = {f"shards/part-{i:02d}.bin": ("weights", bytes([i]) * 10) for i in range(6)}
    pub = publish_release(
        client,
        admin_headers,
        model="acme/many",
        components={"weights": [("open", clock.now() - timedelta(hours=1))]},
        files=files,
    )
    url: str | None = f"http://testserver/api/models/acme/many/tree/{pub.revision}"
    params: dict[str, str] | None = {"recursive": "true", "limit": "3"}
    seen: list[str] = []
    pages = 0
    while url is not None:
        r = client.get(url, params=params)
        seen += [e["path"] for e in check(r, 200)]
        pages += 1
        url = r.links.get("next", {}).get("url")
        params = None  # the next link carries the query itself, as the client expects
    assert pages == 3
    assert seen == ["shards", *sorted(files), "signatures", "signatures/weights.sig"]


def test_fully_gated_release_tree_is_gated_repo_with_the_reason(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        model="acme/later",
        components={
            "weights": [
                ("partner", clock.now() - timedelta(days=1)),
                ("open", clock.now() + timedelta(days=10)),
            ]
        },
    )
    r = client.get("/api/models/acme/later/tree/main", params={"recursive": "true"})
    assert r.status_code == 403
    # Not GatedRepo: `hf` would print "requires approval" for it and drop the message.
    assert r.headers["X-Error-Code"] == "Embargoed"
    body = r.json()
    assert body["code"] == "embargoed"
    assert body["until"] == "2026-06-11T12:00:00+00:00"
    assert body["components"] == [
        {
            "component": "weights",
            "reason": "embargoed",
            "opens_to_you_at": "2026-06-11T12:00:00+00:00",
        }
    ]
    assert (
        "release v1 of acme/later is not open to you: weights is under embargo until "
        "2026-06-11T12:00:00+00:00" in r.headers["X-Error-Message"]
    )


def test_research_tier_release_asks_for_an_access_request(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        model="acme/research",
        components={"weights": [("research", clock.now() - timedelta(days=1))]},
    )
    r = client.get("/api/models/acme/research/tree/main")
    assert r.status_code == 403
    assert r.headers["X-Error-Code"] == "GatedRepo"
    assert r.json()["code"] == "access_grant_required"
    assert "weightgate request-access acme/research" in r.json()["detail"]


def test_a_lift_shows_up_at_its_exact_second(
    client: TestClient, mixed: Published, clock: FixedClock
) -> None:
    clock.advance(days=30, seconds=-1)
    assert len(check(client.get(API), 200)["siblings"]) == 3  # with config's signature
    clock.advance(seconds=1)
    info = check(client.get(API), 200)
    assert len(info["siblings"]) == 5
    assert info["gated"] is False


def test_bad_api_key_is_invalid_credentials_not_repo_not_found(
    client: TestClient, mixed: Published
) -> None:
    r = client.get(API, headers={"Authorization": "Bearer wg_" + "x" * 43})
    assert r.status_code == 401
    assert r.headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    assert r.json()["code"] == "invalid_api_key"
    assert "X-Error-Code" not in r.headers


def test_tree_rejects_a_forged_cursor(client: TestClient, mixed: Published) -> None:
    r = client.get(f"{API}/tree/main", params={"cursor": "!!"})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_cursor"
