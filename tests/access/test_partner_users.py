"""A partner organisation's own people (users linked to a partner): its agreement, secret
rotation with a grace period, and its own activity from the audit log — nobody else's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.access.test_partner_tokens import access_token, exchange
from tests.factories.access import create_partner, researcher
from tests.factories.catalogue import check, publish_release


def _link(
    client: TestClient, admin_headers: dict[str, str], user_id: int, partner_id: int | None
) -> dict[str, Any]:
    body = {"partner_id": partner_id}
    return check(client.patch(f"/v1/users/{user_id}", json=body, headers=admin_headers), 200)  # type: ignore[no-any-return]


def _setup(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """A published model, a partner covering it, a user linked to the partner and one not."""
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        components={"weights": [("partner", now - timedelta(hours=1))]},
        files={"w.bin": ("weights", b"w")},
    )
    partner = create_partner(client, admin_headers, name="Lab A", models=["acme/atlas-7b"])
    member, member_headers = researcher(db, clock, email="ops@lab-a.example")
    _, outsider_headers = researcher(db, clock, email="someone@uni.example")
    linked = _link(client, admin_headers, member.id, partner["id"])
    assert linked["partner_id"] == partner["id"]
    return partner, member_headers, outsider_headers


def test_admin_links_and_unlinks_users_and_refuses_unknown_partners(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    partner, member_headers, _ = _setup(client, admin_headers, db, clock)
    me = check(client.get("/v1/me", headers=member_headers), 200)
    assert me["partner_id"] == partner["id"]
    bad = client.patch(f"/v1/users/{me['id']}", json={"partner_id": 999999}, headers=admin_headers)
    assert bad.status_code == 422
    assert bad.json()["code"] == "unknown_partner"
    # Still linked: a refused change changes nothing.
    assert check(client.get(f"/v1/users/{me['id']}", headers=admin_headers), 200)["partner_id"]
    created = check(
        client.post(
            "/v1/users",
            json={"email": "new@lab-a.example", "partner_id": partner["id"]},
            headers=admin_headers,
        ),
        201,
    )
    assert created["user"]["partner_id"] == partner["id"]
    _link(client, admin_headers, me["id"], None)
    gone = client.get("/v1/me/partner", headers=member_headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "partner_not_found"
    audit = check(
        client.get(
            "/v1/audit",
            params={"action": "user.updated", "target_id": str(me["id"])},
            headers=admin_headers,
        ),
        200,
    )["items"]
    assert [e["after"]["partner_id"] for e in audit] == [None, partner["id"]]


def test_member_sees_the_agreement_and_others_get_the_same_404(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    partner, member_headers, outsider_headers = _setup(client, admin_headers, db, clock)
    mine = check(client.get("/v1/me/partner", headers=member_headers), 200)
    assert mine["client_id"] == partner["client_id"]
    assert mine["name"] == "Lab A"
    assert mine["tier"] == "partner"
    assert [(m["model"], m["active"]) for m in mine["models"]] == [("acme/atlas-7b", True)]
    assert "client_secret" not in mine
    assert "secret_hash" not in mine
    for path in ("/v1/me/partner", "/v1/me/partner/activity"):
        for headers in (outsider_headers, admin_headers):
            refused = client.get(path, headers=headers)
            assert refused.status_code == 404, path
            assert refused.json()["code"] == "partner_not_found"
    refused = client.post("/v1/me/partner/rotate-secret", json={}, headers=outsider_headers)
    assert refused.status_code == 404
    # The partner's own machine credentials are not a person: user routes refuse them.
    assert client.get("/v1/me/partner", headers=access_token(client, partner)).status_code == 403
    assert client.get("/v1/me/partner").status_code == 401


def test_rotation_with_grace_keeps_the_old_secret_for_the_grace_period_only(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    partner, member_headers, _ = _setup(client, admin_headers, db, clock)
    old = partner["client_secret"]
    old_token = access_token(client, partner, old)
    rotated = check(
        client.post(
            "/v1/me/partner/rotate-secret",
            json={"previous_secret_valid_for_seconds": 600},
            headers=member_headers,
        ),
        200,
    )
    new = rotated["client_secret"]
    assert new.startswith("wgp_")
    assert new != old
    assert rotated["previous_secret_expires_at"] is not None
    # During the grace period both secrets work, and tokens from the old one too.
    assert exchange(client, partner, old).status_code == 200
    assert exchange(client, partner, new).status_code == 200
    assert client.get("/v1/me", headers=old_token).status_code == 200
    clock.advance(600)
    assert exchange(client, partner, old).status_code == 401
    assert exchange(client, partner, new).status_code == 200
    # The secret is shown once: reading the partner again never shows it.
    again = check(client.get("/v1/me/partner", headers=member_headers), 200)
    assert "client_secret" not in again


def test_rotation_without_grace_stops_the_old_secret_and_its_tokens_at_once(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    partner, member_headers, _ = _setup(client, admin_headers, db, clock)
    old_token = access_token(client, partner)
    rotated = check(
        client.post("/v1/me/partner/rotate-secret", json={}, headers=member_headers), 200
    )
    assert exchange(client, partner, partner["client_secret"]).status_code == 401
    assert client.get("/v1/me", headers=old_token).status_code == 401
    assert exchange(client, partner, rotated["client_secret"]).status_code == 200
    too_long = client.post(
        "/v1/me/partner/rotate-secret",
        json={"previous_secret_valid_for_seconds": 8 * 86_400},
        headers=member_headers,
    )
    assert too_long.status_code == 422
    # Disabled by an admin: its people cannot bring it back to life with a new secret.
    check(
        client.patch(
            f"/v1/partners/{partner['id']}", json={"disabled": True}, headers=admin_headers
        ),
        200,
    )
    refused = client.post("/v1/me/partner/rotate-secret", json={}, headers=member_headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "partner_disabled"


def test_activity_is_the_partners_own_trail_only(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    partner, member_headers, outsider_headers = _setup(client, admin_headers, db, clock)
    other = create_partner(client, admin_headers, name="Lab B", models=["acme/atlas-7b"])
    headers = access_token(client, partner)
    issued = check(client.post("/v1/tokens", json={"model": "acme/atlas-7b"}, headers=headers), 201)
    got = client.get(issued["files"][0]["url"], params={"token": issued["token"]})
    assert got.status_code == 200
    assert got.content == b"w"
    assert exchange(client, partner, "wgp_" + "x" * 43).status_code == 401  # a wrong secret
    # Noise from others that must not show up.
    access_token(client, other)
    client.post("/v1/tokens", json={"model": "acme/atlas-7b"}, headers=outsider_headers)
    check(
        client.post(
            "/v1/me/partner/rotate-secret",
            json={"previous_secret_valid_for_seconds": 60},
            headers=member_headers,
        ),
        200,
    )

    events = check(client.get("/v1/me/partner/activity", headers=member_headers), 200)["items"]
    actions = [e["action"] for e in events]
    assert actions == [
        "partner.updated",
        "oauth.denied",
        "download.redeemed",
        "token.issued",
        "oauth.token_issued",
        "partner.created",
    ]
    me = check(client.get("/v1/me", headers=member_headers), 200)
    assert events[0]["actor"] == f"user:{me['id']}"
    assert events[0]["data"] == {"secret_rotated": True}
    assert events[1]["actor"] == f"client:{partner['client_id']}"
    assert {e["actor"] for e in events[2:5]} == {f"partner:{partner['id']}"}
    # Snapshots and hash-chain internals stay with admins.
    assert all("before" not in e and "after" not in e and "hash" not in e for e in events)
    first = check(
        client.get("/v1/me/partner/activity", params={"limit": 2}, headers=member_headers), 200
    )
    rest = check(
        client.get(
            "/v1/me/partner/activity",
            params={"limit": 10, "cursor": first["next_cursor"]},
            headers=member_headers,
        ),
        200,
    )
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in events]
    assert rest["next_cursor"] is None
