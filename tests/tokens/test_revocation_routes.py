"""GET/DELETE /v1/tokens/{jti} and POST /v1/principals/{id}/revoke-tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent
from tests.tokens.world import World


def test_holder_reads_and_revokes_own_token(world: World, db: Session) -> None:
    out = world.token(world.researcher, max_uses=3)
    jti = out["jti"]
    info = world.client.get(f"/v1/tokens/{jti}", headers=world.researcher).json()
    assert info["status"] == "active"
    assert (info["uses"], info["max_uses"], info["kind"]) == (0, 3, "download")
    assert "token" not in info
    resp = world.client.request(
        "DELETE", f"/v1/tokens/{jti}", json={"reason": "laptop stolen"}, headers=world.researcher
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "revoked"
    assert resp.json()["revoked_reason"] == "laptop stolen"
    # Idempotent: a second revoke answers the same and records nothing new.
    again = world.client.delete(f"/v1/tokens/{jti}", headers=world.researcher)
    assert again.json()["revoked_at"] == resp.json()["revoked_at"]
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "token.revoked")).all()
    assert len(events) == 1
    assert events[0].actor == f"user:{world.researcher_id}"


def test_others_tokens_are_404_except_for_admins(world: World) -> None:
    jti = world.token(world.researcher)["jti"]
    for method in ("GET", "DELETE"):
        resp = world.client.request(method, f"/v1/tokens/{jti}", headers=world.stranger)
        assert (resp.status_code, resp.json()["code"]) == (404, "token_not_found")
    assert world.client.get(f"/v1/tokens/{jti}", headers=world.admin).status_code == 200
    assert world.client.get("/v1/tokens/" + "x" * 100, headers=world.admin).status_code == 404
    assert world.client.get(f"/v1/tokens/{jti}").status_code == 401


def test_status_follows_expiry(world: World) -> None:
    jti = world.token(world.researcher, ttl_seconds=60)["jti"]
    world.clock.advance(60)
    info = world.client.get(f"/v1/tokens/{jti}", headers=world.researcher).json()
    assert info["status"] == "expired"


def test_admin_revokes_every_token_of_a_principal(world: World, db: Session) -> None:
    a = world.token(world.researcher)["jti"]
    b = world.token(world.researcher)["jti"]
    other = world.token(world.stranger, components=["tokenizer"])["jti"]
    resp = world.client.post(
        f"/v1/principals/user:{world.researcher_id}/revoke-tokens",
        json={"reason": "left the lab"},
        headers=world.admin,
    )
    assert resp.json() == {"principal": f"user:{world.researcher_id}", "revoked": 2}
    for jti in (a, b):
        info = world.client.get(f"/v1/tokens/{jti}", headers=world.admin).json()
        assert (info["status"], info["revoked_reason"]) == ("revoked", "left the lab")
    assert world.client.get(f"/v1/tokens/{other}", headers=world.admin).json()["status"] == "active"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "tokens.revoked")).one()
    assert event.data == {"revoked": 2, "reason": "left the lab"}


def test_principal_revocation_is_admin_only_and_validated(world: World) -> None:
    url = f"/v1/principals/user:{world.researcher_id}/revoke-tokens"
    assert world.client.post(url, headers=world.researcher).status_code == 403
    for bad, status, code in (
        ("user:abc", 422, "invalid_principal"),
        ("group:1", 422, "invalid_principal"),
        ("user:999999", 404, "principal_not_found"),
    ):
        resp = world.client.post(f"/v1/principals/{bad}/revoke-tokens", headers=world.admin)
        assert (resp.status_code, resp.json()["code"]) == (status, code)
    resp = world.client.post(url, json={"reason": "x", "all": True}, headers=world.admin)
    assert resp.status_code == 422
