"""Model and release lists: keyset pagination, and what each caller may see (the rules of
app/catalogue/visibility.py). Search and the per-caller openness count are in test_listing.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.factories.catalogue import check, create_model, publish_release
from tests.factories.principals import make_user


def walk(client: TestClient, url: str, headers: dict[str, str], limit: int) -> list[list[Any]]:
    """Every page of a list, following next_cursor until it is null."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = check(client.get(url, params=params, headers=headers), 200)
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not terminate"


def signature_of(
    client: TestClient, headers: dict[str, str], version: str, component: str = "weights"
) -> int:
    """The size of a component's signature file, as the caller's manifest lists it."""
    manifest = check(
        client.get(f"/v1/models/acme/atlas-7b/releases/{version}/manifest", headers=headers), 200
    )
    sizes: dict[str, int] = {f["path"]: f["size"] for f in manifest["files"]}
    return sizes[f"signatures/{component}.sig"]


def open_now(clock: FixedClock) -> dict[str, list[tuple[str, Any]]]:
    return {"weights": [("open", clock.now() - timedelta(days=1))]}


def test_admin_pages_through_every_model(client: TestClient, admin_headers: dict[str, str]) -> None:
    ids = [f"acme/m{i:02d}" for i in range(7)]
    for model_id in ids:
        create_model(client, admin_headers, model_id)
    pages = walk(client, "/v1/models", admin_headers, limit=3)
    assert [[m["id"] for m in p] for p in pages] == [ids[0:3], ids[3:6], ids[6:7]]
    assert all(m["clearance"] == "internal" for p in pages for m in p)


def test_model_pages_skip_hidden_models_yet_stay_full(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    # Interleave announced (open now) and unannounced (draft only) models.
    announced = []
    for i in range(6):
        publish_release(
            client,
            admin_headers,
            model=f"acme/open{i}",
            components=open_now(clock),
        )
        announced.append(f"acme/open{i}")
        create_model(client, admin_headers, f"acme/secret{i}")
    pages = walk(client, "/v1/models", {}, limit=4)
    seen = [m["id"] for p in pages for m in p]
    assert seen == announced
    assert [len(p) for p in pages] == [4, 2]
    assert all(m["latest_version"] == "v1" for p in pages for m in p)


def test_model_announced_only_once_a_component_leaves_internal(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        components={"weights": [("research", clock.now() + timedelta(days=2))]},
    )
    assert check(client.get("/v1/models"), 200)["items"] == []
    hidden = client.get("/v1/models/acme/atlas-7b")
    unknown = client.get("/v1/models/acme/never-existed")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"] == "model acme/atlas-7b not found"
    assert hidden.json()["code"] == unknown.json()["code"] == "model_not_found"
    clock.advance(days=3)
    assert [m["id"] for m in check(client.get("/v1/models"), 200)["items"]] == ["acme/atlas-7b"]
    model = check(client.get("/v1/models/acme/atlas-7b"), 200)
    assert model["clearance"] == "open"


def test_releases_are_paginated_and_drafts_hidden_from_non_admins(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, db: Session
) -> None:
    publish_release(client, admin_headers, components=open_now(clock))
    for v in ("v2", "v3", "v4"):
        publish_release(
            client,
            admin_headers,
            version=v,
            create=False,
            components=open_now(clock),
            files={"model.safetensors": ("weights", v.encode())},
        )
    publish_release(client, admin_headers, version="v5-draft", create=False, publish=False)
    url = "/v1/models/acme/atlas-7b/releases"
    admin_pages = walk(client, url, admin_headers, limit=2)
    assert [[r["version"] for r in p] for p in admin_pages] == [
        ["v1", "v2"],
        ["v3", "v4"],
        ["v5-draft"],
    ]
    draft = admin_pages[-1][0]
    assert draft["status"] == "draft"
    assert draft["revision"] is None
    assert draft["file_count"] == 1
    _, key = make_user(db, clock)
    for headers in ({}, {"Authorization": f"Bearer {key}"}):
        pages = walk(client, url, headers, limit=3)
        assert [[r["version"] for r in p] for p in pages] == [["v1", "v2", "v3"], ["v4"]]
        v1 = pages[0][0]
        assert v1["status"] == "published"
        assert len(v1["revision"]) == 40
        # The weights file and, since #22, the component's signature file.
        signature = signature_of(client, headers, "v1")
        assert v1["file_count"] == 2
        assert v1["total_size"] == 1000 + signature
    # A draft is invisible by version too, to everyone but admins.
    r = client.get(f"{url}/v5-draft")
    assert r.status_code == 404
    assert r.json()["code"] == "release_not_found"
    assert check(client.get(f"{url}/v5-draft", headers=admin_headers), 200)["status"] == "draft"


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"cursor": "not-base64!"}, "cursor is not one this server issued"),
        ({"cursor": "LTE"}, "cursor is not one this server issued"),  # base64("-1")
    ],
)
def test_bad_page_parameters_are_refused(
    client: TestClient, admin_headers: dict[str, str], params: dict[str, Any], why: str
) -> None:
    r = client.get("/v1/models", params=params, headers=admin_headers)
    assert r.status_code == 422
    assert why in r.json()["detail"]


def test_manifest_shows_each_caller_only_what_it_may_download(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    lift = clock.now() + timedelta(days=10)
    pub = publish_release(
        client,
        admin_headers,
        components={
            "weights": [("partner", clock.now() - timedelta(days=1)), ("open", lift)],
            "tokenizer": [("open", clock.now() - timedelta(days=1))],
            "safety": [],  # internal until scheduled
        },
        files={
            "model.safetensors": ("weights", b"w"),
            "tokenizer.json": ("tokenizer", b"t"),
            "classifier.bin": ("safety", b"s"),
        },
    )
    url = "/v1/models/acme/atlas-7b/releases/v1/manifest"
    anon = check(client.get(url), 200)
    assert anon["revision"] == pub.revision
    assert anon["clearance"] == "open"
    assert [f["path"] for f in anon["files"]] == ["signatures/tokenizer.sig", "tokenizer.json"]
    comps = {c["name"]: c for c in anon["components"]}
    assert set(comps) == {"weights", "tokenizer"}  # internal "safety" is not even named
    assert comps["weights"]["downloadable"] is False
    assert comps["weights"]["tier"] == "partner"
    assert comps["weights"]["next"] == {
        "tier": "open",
        "at": lift.isoformat().replace("+00:00", "Z"),
    }
    assert comps["weights"]["opens_to_you_at"] == comps["weights"]["next"]["at"]
    admin = check(client.get(url, headers=admin_headers), 200)
    assert [f["path"] for f in admin["files"] if not f["path"].startswith("signatures/")] == [
        "classifier.bin",
        "model.safetensors",
        "tokenizer.json",
    ]
    # "main" and the revision id name the same release.
    assert check(client.get("/v1/models/acme/atlas-7b/releases/main/manifest"), 200) == anon
    by_rev = check(client.get(f"/v1/models/acme/atlas-7b/releases/{pub.revision}/manifest"), 200)
    assert by_rev == anon


def test_release_sizes_count_only_what_the_caller_may_download(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    """The size of a component still under embargo is not an outsider's to know."""
    past = clock.now() - timedelta(days=1)
    future = clock.now() + timedelta(days=30)
    publish_release(
        client,
        admin_headers,
        components={
            "tokenizer": [("open", past)],
            "weights": [("partner", past), ("open", future)],
        },
        files={"tokenizer.json": ("tokenizer", b"t" * 10), "model.bin": ("weights", b"w" * 5000)},
    )
    url = "/v1/models/acme/atlas-7b/releases/v1"
    # Each component also carries its signature file (#22), counted like any other file.
    signatures = {
        name: signature_of(client, admin_headers, "v1", name) for name in ("tokenizer", "weights")
    }
    everything = (4, 5010 + sum(signatures.values()))
    admin = check(client.get(url, headers=admin_headers), 200)
    assert (admin["file_count"], admin["total_size"]) == everything
    tokenizer_only = (2, 10 + signatures["tokenizer"])
    anonymous = check(client.get(url), 200)
    assert (anonymous["file_count"], anonymous["total_size"]) == tokenizer_only
    listed = check(client.get("/v1/models/acme/atlas-7b/releases"), 200)["items"]
    assert [(r["file_count"], r["total_size"]) for r in listed] == [tokenizer_only]
    clock.set(future)
    opened = check(client.get(url), 200)
    assert (opened["file_count"], opened["total_size"]) == everything
