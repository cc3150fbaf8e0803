"""NUL never reaches the database from the token routes, and every refusal is on record.

PostgreSQL cannot store NUL in text, nor even compare text with it: a NUL in the client id
of ``/v1/oauth/token`` (form body or HTTP Basic), or in the body of ``POST /v1/tokens`` or a
revocation, used to answer 500 with the refusal's audit event rolled back with it.
"""

from __future__ import annotations

import base64

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent
from tests.tokens.world import MODEL, World


def last_event(db: Session, action: str) -> AuditEvent:
    db.expire_all()
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    return event


def test_nul_in_client_credentials_is_an_audited_invalid_client(world: World, db: Session) -> None:
    body = {"grant_type": "client_credentials", "client_id": "wgc_\x00x", "client_secret": "s"}
    basic = base64.b64encode(b"wgc_\x00y:" + world.client_secret.encode()).decode()
    for data, headers in (
        (body, {"X-Request-Id": "nul-form"}),
        (
            {"grant_type": "client_credentials"},
            {"Authorization": f"Basic {basic}", "X-Request-Id": "nul-basic"},
        ),
    ):
        attempt = world.client.post("/v1/oauth/token", data=data, headers=headers)
        assert attempt.status_code == 401, attempt.text
        assert attempt.json()["code"] == "invalid_client"
        event = last_event(db, "oauth.denied")
        assert event.request_id == attempt.headers["x-request-id"]
        assert "\x00" not in event.actor
        assert event.actor.startswith("client:wgc_\ufffd")


def test_nul_in_a_token_request_or_a_revocation_is_refused_by_field(world: World) -> None:
    for body, field in (
        ({"model": "acme/\x00x"}, "model"),
        ({"model": MODEL, "version": "v\x00"}, "version"),
        ({"model": MODEL, "components": ["weights\x00"]}, "components[0]"),
        ({"model": MODEL, "paths": ["a\x00.bin"]}, "paths[0]"),
    ):
        r = world.client.post("/v1/tokens", json=body, headers=world.researcher)
        assert r.status_code == 422, r.text
        assert f"{field} contains a NUL character" in r.json()["detail"]
    issued = world.token(world.researcher, components=["config"])
    r = world.client.request(
        "DELETE",
        f"/v1/tokens/{issued['jti']}",
        json={"reason": "leak\x00ed"},
        headers=world.researcher,
    )
    assert r.status_code == 422, r.text
    assert "reason contains a NUL character" in r.json()["detail"]
    r = world.client.post(
        f"/v1/principals/user:{world.researcher_id}/revoke-tokens",
        json={"reason": "\x00"},
        headers=world.admin,
    )
    assert r.status_code == 422, r.text


def test_a_refused_partner_bearer_is_recorded_with_the_callers_address_and_request_id(
    world: World, db: Session
) -> None:
    r = world.client.get(
        "/v1/me", headers={"Authorization": "Bearer not-a-jwt", "X-Request-Id": "bearer-1"}
    )
    assert r.status_code == 401
    event = last_event(db, "oauth.bearer_denied")
    assert (event.client_addr, event.request_id) == ("testclient", "bearer-1")
