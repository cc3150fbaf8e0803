"""No token, API key, client secret or presigned URL in logs, error bodies or audit events."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent
from tests.tokens.world import MODEL, World, bearer

URL = "/v1/files/acme/atlas-7b/v1/"
CLIENT_LOGGERS = ("httpx", "httpcore")


def altered(secret: str) -> str:
    """The same secret with its last character changed (never to itself)."""
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_secrets_never_reach_logs_bodies_or_audit(
    world: World,
    db: Session,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    # Our own loggers too (configure_logging sets them to the configured level): served
    # downloads are logged at DEBUG and must be as clean as the rest.
    caplog.set_level(logging.DEBUG, logger="app")
    c = world.client
    bodies: list[str] = []
    api_key = world.researcher["Authorization"].split()[1]

    def keep(resp: Any) -> Any:
        if resp.status_code >= 300 and resp.status_code != 302:
            bodies.append(resp.text)
        return resp

    out = keep(c.post("/v1/tokens", json={"model": MODEL, "max_uses": 1}, headers=world.researcher))
    token = out.json()["token"]
    redirect = keep(c.get(URL + "config.json", params={"token": token}, follow_redirects=False))
    assert redirect.status_code == 302
    presigned = redirect.headers["location"]
    signature = parse_qs(urlsplit(presigned).query)["X-Amz-Signature"][0]
    # Refusals of every kind, with the secrets in the request.
    keep(c.get(URL + "config.json", params={"token": token}))  # used up
    keep(c.get(URL + "tokenizer.json", headers=bearer(token)))  # wrong file
    keep(c.get(URL + "config.json", params={"token": token + "x"}))  # bad signature
    keep(c.get(URL + "config.json", headers=bearer(api_key)))  # API key at /v1/files
    keep(c.post("/v1/tokens", json={"model": MODEL, "tier": "internal"}, headers=world.researcher))
    keep(c.post("/v1/tokens", json={"model": MODEL}, headers=bearer(altered(api_key))))
    keep(c.post("/v1/tokens", json={"model": MODEL}, headers=bearer(token)))
    partner = world.partner_token()
    keep(
        c.post(
            "/v1/tokens", json={"model": MODEL, "components": ["safety"]}, headers=bearer(partner)
        )
    )
    keep(
        c.post(
            "/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": world.client_id,
                "client_secret": altered(world.client_secret),
            },
        )
    )
    world.clock.advance(3600)
    keep(c.post("/v1/tokens", json={"model": MODEL}, headers=bearer(partner)))  # expired
    assert len(bodies) == 10

    # Everything the server side logged, at DEBUG, from every library. The test's own HTTP
    # client (httpx) logs the URLs it requests, which is the client's business.
    server_records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__}" for r in server_records)
    logs += "".join(capfd.readouterr())
    audit = " ".join(
        f"{e.actor} {e.target_id} {e.data} {e.before} {e.after}"
        for e in db.scalars(select(AuditEvent)).all()
    )
    assert "download.redeemed" in logs  # the capture really saw our log lines
    secrets = {
        "download token": token,
        "download token signature": token.rsplit(".", 1)[1],
        "API key": api_key,
        "partner token": partner,
        "client secret": world.client_secret,
        "presigned URL": presigned,
        "presigned signature": signature,
    }
    for what, secret in secrets.items():
        assert secret not in logs, f"{what} in logs"
        assert secret not in audit, f"{what} in audit events"
        for body in bodies:
            assert secret not in body, f"{what} in an error body"
