from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.apikeys import hash_key
from app.clock import FixedClock
from app.models import ApiKey
from tests.factories.access import audit_events, researcher
from tests.factories.catalogue import check


def test_me_describes_the_caller(client: TestClient, db: Session, clock: FixedClock) -> None:
    user, headers = researcher(db, clock, email="ada@example.org")
    body = check(client.get("/v1/me", headers=headers), 200)
    assert body == {
        "kind": "user",
        "id": user.id,
        "name": "Test User",
        "email": "ada@example.org",
        "role": "researcher",
        "client_id": None,
        "created_at": clock.now().isoformat().replace("+00:00", "Z"),
        "models": None,
        "partner_id": None,
    }


def test_me_needs_credentials(client: TestClient) -> None:
    r = client.get("/v1/me")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "unauthenticated"
    bad = client.get("/v1/me", headers={"Authorization": "Bearer wg_" + "x" * 43})
    assert bad.status_code == 401
    assert bad.json()["code"] == "invalid_api_key"


def test_key_is_shown_once_stored_hashed_and_works(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    user, headers = researcher(db, clock)
    created = check(
        client.post(
            "/v1/me/api-keys", json={"name": "laptop", "expires_in_days": 30}, headers=headers
        ),
        201,
    )
    key = created["key"]
    assert key.startswith("wg_")
    assert created["prefix"] == key[:11]
    assert created["expires_at"].startswith((clock.now() + timedelta(days=30)).date().isoformat())
    row = db.scalar(select(ApiKey).where(ApiKey.id == created["id"]))
    assert row is not None
    assert row.key_hash == hash_key(key)
    assert key not in (row.key_hash, row.prefix, row.name)
    me = check(client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}), 200)
    assert me["id"] == user.id
    listed = check(client.get("/v1/me/api-keys", headers=headers), 200)
    assert [k["name"] for k in listed["items"]] == ["test", "laptop"]
    assert all("key" not in k for k in listed["items"])
    assert key not in client.get("/v1/me/api-keys", headers=headers).text
    (event,) = audit_events(db, "api_key.created")[-1:]
    assert event.target_id == str(created["id"])
    assert key not in str(event.after)


def test_key_expiry_is_enforced(client: TestClient, db: Session, clock: FixedClock) -> None:
    _, headers = researcher(db, clock)
    at = clock.now() + timedelta(hours=1)
    key = check(
        client.post("/v1/me/api-keys", json={"expires_at": at.isoformat()}, headers=headers), 201
    )["key"]
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/me", headers=auth).status_code == 200
    clock.set(at)
    r = client.get("/v1/me", headers=auth)
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_api_key"


def test_bad_expiries_are_refused(client: TestClient, db: Session, clock: FixedClock) -> None:
    _, headers = researcher(db, clock)
    past = client.post(
        "/v1/me/api-keys",
        json={"expires_at": (clock.now() - timedelta(seconds=1)).isoformat()},
        headers=headers,
    )
    assert past.status_code == 422
    assert past.json()["code"] == "invalid_expiry"
    both = client.post(
        "/v1/me/api-keys",
        json={"expires_at": (clock.now() + timedelta(days=1)).isoformat(), "expires_in_days": 3},
        headers=headers,
    )
    assert both.status_code == 422
    assert "not both" in both.json()["detail"]
    naive = client.post(
        "/v1/me/api-keys", json={"expires_at": "2030-01-01T00:00:00"}, headers=headers
    )
    assert naive.status_code == 422
    sneaky = client.post("/v1/me/api-keys", json={"user_id": 1}, headers=headers)
    assert sneaky.status_code == 422


def test_deleting_a_key_stops_it_and_only_the_owner_can(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    _, headers = researcher(db, clock)
    _, other_headers = researcher(db, clock)
    created = check(client.post("/v1/me/api-keys", json={}, headers=headers), 201)
    auth = {"Authorization": f"Bearer {created['key']}"}
    stranger = client.delete(f"/v1/me/api-keys/{created['id']}", headers=other_headers)
    assert stranger.status_code == 404
    assert stranger.json()["code"] == "api_key_not_found"
    assert client.get("/v1/me", headers=auth).status_code == 200
    assert client.delete(f"/v1/me/api-keys/{created['id']}", headers=headers).status_code == 204
    assert client.get("/v1/me", headers=auth).status_code == 401
    again = client.delete(f"/v1/me/api-keys/{created['id']}", headers=headers)
    assert again.status_code == 404
    listed = check(client.get("/v1/me/api-keys", headers=headers), 200)["items"]
    assert [k["revoked_at"] is not None for k in listed] == [False, True]
    assert audit_events(db, "api_key.revoked")[-1].target_id == str(created["id"])


def test_key_listing_paginates(client: TestClient, db: Session, clock: FixedClock) -> None:
    _, headers = researcher(db, clock)
    for i in range(4):
        check(client.post("/v1/me/api-keys", json={"name": f"k{i}"}, headers=headers), 201)
    first = check(client.get("/v1/me/api-keys", params={"limit": 3}, headers=headers), 200)
    assert [k["name"] for k in first["items"]] == ["test", "k0", "k1"]
    rest = check(
        client.get(
            "/v1/me/api-keys", params={"limit": 3, "cursor": first["next_cursor"]}, headers=headers
        ),
        200,
    )
    assert [k["name"] for k in rest["items"]] == ["k2", "k3"]
    assert rest["next_cursor"] is None
