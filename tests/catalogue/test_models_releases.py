from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from app.clock import FixedClock
from tests.factories.catalogue import check, create_model, publish_release, sha256


def test_admin_creates_model_and_reads_it_back(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = create_model(
        client,
        admin_headers,
        "acme/atlas-7b",
        request_fields=[{"name": "affiliation", "type": "text"}],
    )
    assert body["id"] == "acme/atlas-7b"
    assert body["license_sha256"] == sha256(b"Be nice.")
    got = check(client.get("/v1/models/acme/atlas-7b", headers=admin_headers), 200)
    assert got["request_fields"][0]["name"] == "affiliation"
    assert got["clearance"] == "internal"


def test_creating_a_model_needs_admin(client: TestClient) -> None:
    r = client.post("/v1/models", json={"id": "acme/x"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "unauthenticated"


def test_publish_computes_revision_and_freezes(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    pub = publish_release(
        client, admin_headers, components={"weights": [("open", clock.now() - timedelta(days=1))]}
    )
    assert len(pub.revision) == 40
    r = client.put(
        "/v1/models/acme/atlas-7b/releases/v1/files/extra.bin",
        params={"component": "weights"},
        content=b"x",
        headers=admin_headers,
    )
    assert r.status_code == 409
    assert r.json()["code"] == "release_published"
    manifest = check(client.get("/v1/models/acme/atlas-7b/releases/v1/manifest"), 200)
    assert manifest["revision"] == pub.revision
    signature = manifest["files"][1]
    assert manifest["files"] == [
        {
            "path": "model.safetensors",
            "size": 1000,
            "sha256": sha256(b"\x00" * 1000),
            "component": "weights",
            "tier": "open",
        },
        {**signature, "path": "signatures/weights.sig", "component": "weights", "tier": "open"},
    ]
    assert manifest["signature_status"] == "signed"
    assert [s["path"] for s in manifest["signatures"]] == ["signatures/weights.sig"]


def test_components_take_schedules_relative_to_the_call(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    create_model(client, admin_headers)
    check(
        client.post(
            "/v1/models/acme/atlas-7b/releases", json={"version": "v1"}, headers=admin_headers
        ),
        201,
    )
    body = {
        "name": "weights",
        "schedule": [{"tier": "research", "at": "+2h"}, {"tier": "open", "at": "+30d"}],
    }
    out = check(
        client.post(
            "/v1/models/acme/atlas-7b/releases/v1/components", json=body, headers=admin_headers
        ),
        201,
    )
    now = clock.now()
    assert out["schedule"] == [
        {"tier": "research", "at": (now + timedelta(hours=2)).isoformat().replace("+00:00", "Z")},
        {"tier": "open", "at": (now + timedelta(days=30)).isoformat().replace("+00:00", "Z")},
    ]
    assert out["next"] == out["schedule"][0]
