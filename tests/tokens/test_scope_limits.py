"""A token is only issued if it can be redeemed: a release with more components than a
token's scope may name (256) used to get a token, charged and audited, whose every download
was refused with ``token_bad_claim``."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, IssuedToken
from app.tokens.claims import MAX_SCOPE_ITEMS
from tests.factories.catalogue import check, publish_release


def test_more_components_than_a_token_can_name_are_refused_before_anything_is_signed(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    opened = [("open", clock.now() - timedelta(days=1))]
    names = [f"c{i:03d}" for i in range(MAX_SCOPE_ITEMS + 1)]
    publish_release(
        client,
        admin_headers,
        model="acme/many",
        components=dict.fromkeys(names, opened),
        files={f"{n}.bin": (n, n.encode()) for n in names[:3]},
    )
    r = client.post("/v1/tokens", json={"model": "acme/many"}, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "scope_too_large"
    assert str(MAX_SCOPE_ITEMS) in r.json()["detail"]
    db.expire_all()
    assert db.scalars(select(IssuedToken).where(IssuedToken.kind == "download")).all() == []
    denied = db.scalars(select(AuditEvent).where(AuditEvent.action == "token.denied")).one()
    assert denied.data["code"] == "scope_too_large"
    # Naming the components wanted works, and the token opens its files.
    issued = check(
        client.post(
            "/v1/tokens",
            json={"model": "acme/many", "components": names[:2]},
            headers=admin_headers,
        ),
        201,
    )
    got = client.get(issued["files"][0]["url"], params={"token": issued["token"]})
    assert got.status_code == 200, got.text
