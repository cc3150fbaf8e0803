"""POST /v1/oauth/token and partner access tokens on API routes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import AuditEvent, IssuedToken, Partner
from app.tokens import codec
from tests.tokens.forge import header_of, payload_of
from tests.tokens.world import MODEL, World, bearer


def form(world: World, **over: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": world.client_id,
        "client_secret": world.client_secret,
        **over,
    }


def test_client_credentials_give_a_partner_access_token(world: World, db: Session) -> None:
    resp = world.client.post("/v1/oauth/token", data=form(world))
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    token = body["access_token"]
    assert header_of(token)["typ"] == codec.PARTNER_ACCESS_TYP
    claims = payload_of(token)
    assert claims["aud"] == "weightgate-api"
    assert claims["sub"] == f"partner:{world.partner_id}"
    assert set(claims) == {"iss", "sub", "aud", "iat", "nbf", "exp", "jti"}
    row = db.get(IssuedToken, claims["jti"])
    assert row is not None
    assert (row.kind, row.partner_id) == ("partner_access", world.partner_id)


def test_http_basic_client_authentication(world: World) -> None:
    raw = f"{world.client_id}:{world.client_secret}".encode()
    resp = world.client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )
    assert resp.status_code == 200, resp.text


def test_bad_credentials_are_invalid_client_without_saying_which(world: World, db: Session) -> None:
    for data in (
        form(world, client_secret="wgp_" + "x" * 43),
        form(world, client_id="wgc_unknown"),
        form(world, client_secret=""),
    ):
        resp = world.client.post("/v1/oauth/token", data=data)
        assert resp.status_code == 401
        body = resp.json()
        assert (body["code"], body["error"]) == ("invalid_client", "invalid_client")
        assert world.client_secret not in resp.text
    denied = db.scalars(select(AuditEvent).where(AuditEvent.action == "oauth.denied")).all()
    assert len(denied) == 2  # the empty secret never reached the credential check


def test_malformed_token_requests(world: World) -> None:
    cases = [
        ({"data": form(world, grant_type="password")}, 400, "unsupported_grant_type"),
        ({"json": form(world)}, 400, "invalid_request"),
        (
            {
                "content": "grant_type=client_credentials&grant_type=client_credentials",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            400,
            "invalid_request",
        ),
        (
            {
                "content": "a" * 5000,
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            413,
            "payload_too_large",
        ),
    ]
    for kwargs, status, code in cases:
        resp = world.client.post("/v1/oauth/token", **kwargs)  # type: ignore[arg-type]
        assert resp.status_code == status, resp.text
        assert resp.json()["code"] == code


def test_partner_token_opens_api_routes_until_revoked(world: World, db: Session) -> None:
    headers = world.partner()
    out = world.token(headers, components=["weights"])
    assert out["tier"] == "partner"
    assert world.client.get(f"/v1/tokens/{out['jti']}", headers=headers).status_code == 200
    revoked = world.client.post(
        f"/v1/principals/partner:{world.partner_id}/revoke-tokens", headers=world.admin
    )
    assert revoked.json() == {"principal": f"partner:{world.partner_id}", "revoked": 2}
    resp = world.client.post("/v1/tokens", json={"model": MODEL}, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["code"] == "token_revoked"


def test_expired_partner_token(world: World) -> None:
    headers = world.partner()
    world.clock.advance(3600)
    resp = world.client.post("/v1/tokens", json={"model": MODEL}, headers=headers)
    assert (resp.status_code, resp.json()["code"]) == (401, "token_expired")


def test_disabled_partner_token(world: World, db: Session) -> None:
    headers = world.partner()
    db.execute(
        update(Partner)
        .where(Partner.id == world.partner_id)
        .values(disabled_at=datetime(2026, 6, 1, tzinfo=UTC))
    )
    db.commit()
    resp = world.client.post("/v1/tokens", json={"model": MODEL}, headers=headers)
    assert (resp.status_code, resp.json()["code"]) == (401, "token_principal_disabled")


def test_download_token_is_not_an_api_credential(world: World, db: Session) -> None:
    download = str(world.token(world.researcher)["token"])
    resp = world.client.post("/v1/tokens", json={"model": MODEL}, headers=bearer(download))
    assert (resp.status_code, resp.json()["code"]) == (401, "token_wrong_type")
    assert download not in resp.text
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "oauth.bearer_denied")).all()
    assert [e.data["code"] for e in events] == ["token_wrong_type"]


def test_garbage_bearer_is_a_401(world: World) -> None:
    for value in ("x", "a.b.c", "%%%.{}.!", "A" * 20_000):
        resp = world.client.get("/v1/tokens/abc", headers={"Authorization": f"Bearer {value}"})
        assert resp.status_code == 401, value
        assert resp.json()["code"] in ("token_malformed", "token_too_large")
