"""Partners as callers: client credentials → access token → the API, under the access rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.clock import FixedClock
from tests.factories.access import create_partner
from tests.factories.catalogue import check, publish_release

MANIFEST = "/v1/models/acme/atlas-7b/releases/v1/manifest"


def exchange(client: TestClient, partner: dict[str, Any], secret: str) -> Any:
    """``POST /v1/oauth/token`` with the partner's client id and ``secret``."""
    return client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": partner["client_id"],
            "client_secret": secret,
        },
    )


def access_token(
    client: TestClient, partner: dict[str, Any], secret: str | None = None
) -> dict[str, str]:
    body = check(exchange(client, partner, secret or partner["client_secret"]), 200)
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_partner_sees_its_models_files_until_disabled(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        components={
            "weights": [("partner", now - timedelta(hours=1)), ("open", now + timedelta(days=9))]
        },
        files={"w.bin": ("weights", b"w")},
    )
    partner = create_partner(client, admin_headers, models=["acme/atlas-7b"])
    headers = access_token(client, partner)
    me = check(client.get("/v1/me", headers=headers), 200)
    assert me["kind"] == "partner"
    assert me["id"] == partner["id"]
    assert me["client_id"] == partner["client_id"]
    assert me["models"] == ["acme/atlas-7b"]
    manifest = check(client.get(MANIFEST, headers=headers), 200)
    assert manifest["clearance"] == "partner"
    assert [f["path"] for f in manifest["files"]] == ["signatures/weights.sig", "w.bin"]
    # Partners are not users: user-only routes refuse them.
    keys = client.get("/v1/me/api-keys", headers=headers)
    assert keys.status_code == 403
    assert keys.json()["code"] == "user_required"
    # Ending the agreement takes the files away at once; disabling kills the token.
    check(
        client.patch(f"/v1/partners/{partner['id']}", json={"models": []}, headers=admin_headers),
        200,
    )
    ended = check(client.get(MANIFEST, headers=headers), 200)
    assert ended["clearance"] == "open"
    assert ended["files"] == []
    check(
        client.patch(
            f"/v1/partners/{partner['id']}", json={"disabled": True}, headers=admin_headers
        ),
        200,
    )
    refused = client.get("/v1/me", headers=headers)
    assert refused.status_code == 401
    assert partner["client_secret"] not in refused.text


def test_a_partner_without_agreement_is_an_outsider(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        components={"weights": [("partner", clock.now() - timedelta(hours=1))]},
    )
    stranger = create_partner(client, admin_headers, models=[])
    headers = access_token(client, stranger)
    # The model is announced (a component is above internal), so it is listed with its
    # tier, but nothing is downloadable for a partner whose agreement does not cover it.
    body = check(client.get(MANIFEST, headers=headers), 200)
    assert body["clearance"] == "open"
    assert body["files"] == []
    assert [(c["name"], c["tier"], c["downloadable"]) for c in body["components"]] == [
        ("weights", "partner", False)
    ]


def rotate(
    client: TestClient, url: str, admin_headers: dict[str, str], overlap: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"rotate_secret": True}
    if overlap is not None:
        body["previous_secret_valid_for_seconds"] = overlap
    rotated: dict[str, Any] = check(client.patch(url, json=body, headers=admin_headers), 200)
    return rotated


def test_a_planned_rotation_keeps_the_old_secret_working_for_its_overlap(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    partner = create_partner(client, admin_headers, models=[])
    url = f"/v1/partners/{partner['id']}"
    old = partner["client_secret"]
    headers = access_token(client, partner)
    rotated = rotate(client, url, admin_headers, overlap=3600)
    new = rotated["client_secret"]
    assert rotated["previous_secret_expires_at"] == "2026-06-01T13:00:00Z"  # T0 + 1 h
    # Both secrets work while the partner deploys the new one; its token too.
    check(exchange(client, partner, old), 200)
    check(exchange(client, partner, new), 200)
    check(client.get("/v1/me", headers=headers), 200)
    clock.advance(minutes=59)
    check(exchange(client, partner, old), 200)
    clock.advance(minutes=1)
    late = exchange(client, partner, old)
    assert late.status_code == 401
    assert late.json()["code"] == "invalid_client"
    check(exchange(client, partner, new), 200)

    # Another planned rotation: only the secret it replaces overlaps.
    third = rotate(client, url, admin_headers, overlap=600)["client_secret"]
    assert exchange(client, partner, old).status_code == 401
    check(exchange(client, partner, new), 200)
    check(exchange(client, partner, third), 200)

    # A leak: rotating without an overlap stops every old secret and the tokens at once.
    headers = access_token(client, partner, new)
    leak = rotate(client, url, admin_headers)
    assert leak["previous_secret_expires_at"] is None
    for gone in (new, third):
        assert exchange(client, partner, gone).status_code == 401
    check(exchange(client, partner, leak["client_secret"]), 200)
    assert client.get("/v1/me", headers=headers).status_code == 401


def test_an_overlap_needs_a_rotation_and_stays_short(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    partner = create_partner(client, admin_headers, models=[])
    url = f"/v1/partners/{partner['id']}"
    alone = client.patch(url, json={"previous_secret_valid_for_seconds": 60}, headers=admin_headers)
    assert alone.status_code == 422
    assert alone.json()["code"] == "invalid_rotation"
    too_long = client.patch(
        url,
        json={"rotate_secret": True, "previous_secret_valid_for_seconds": 8 * 86_400},
        headers=admin_headers,
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["loc"] == ["body", "previous_secret_valid_for_seconds"]
    # Nothing changed: the original secret still works.
    check(exchange(client, partner, partner["client_secret"]), 200)
