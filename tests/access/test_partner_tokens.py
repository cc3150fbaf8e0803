"""Partners as callers: client credentials → access token → the API, under the access rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.clock import FixedClock
from tests.factories.access import create_partner
from tests.factories.catalogue import check, publish_release

MANIFEST = "/v1/models/acme/atlas-7b/releases/v1/manifest"


def access_token(client: TestClient, partner: dict[str, Any]) -> dict[str, str]:
    body = check(
        client.post(
            "/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": partner["client_id"],
                "client_secret": partner["client_secret"],
            },
        ),
        200,
    )
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
    assert [f["path"] for f in manifest["files"]] == ["w.bin"]
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
