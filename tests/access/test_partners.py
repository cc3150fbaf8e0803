from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.access.partners import verify_partner_secret
from app.auth.holdings import clearance_for
from app.clock import FixedClock
from app.models import IssuedToken, Model, Partner
from app.policy.principals import Principal
from app.policy.tiers import Tier
from tests.factories.access import audit_events, create_partner, issued_token, researcher
from tests.factories.catalogue import check, create_model


def _model_id(db: Session, repo_id: str) -> int:
    ns, name = repo_id.split("/")
    model = db.query(Model).filter_by(namespace=ns, name=name).one()
    return model.id


def test_create_shows_secret_once_and_stores_only_its_hash(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    create_model(client, admin_headers, "acme/atlas-7b")
    body = create_partner(client, admin_headers, name="Contoso", models=["acme/atlas-7b"])
    secret = body["client_secret"]
    assert secret.startswith("wgp_")
    assert body["client_id"].startswith("wgc_")
    assert body["name"] == "Contoso"
    assert [(m["model"], m["active"], m["ends_at"]) for m in body["models"]] == [
        ("acme/atlas-7b", True, None)
    ]
    row = db.get(Partner, body["id"])
    assert row is not None
    assert secret not in (row.secret_hash, row.client_id)
    assert verify_partner_secret(db, body["client_id"], secret, clock.now()) is row
    listed = client.get("/v1/partners", headers=admin_headers)
    one = client.get(f"/v1/partners/{body['id']}", headers=admin_headers)
    for r in (listed, one):
        assert r.status_code == 200
        assert secret not in r.text
        assert row.secret_hash not in r.text
    assert check(one, 200)["client_id"] == body["client_id"]
    event = audit_events(db, "partner.created")[-1]
    assert event.after is not None
    assert event.after["models"] == {"acme/atlas-7b": None}
    assert secret not in str(event.after)
    assert row.secret_hash not in str(event.after)


def test_partner_routes_are_admin_only(client: TestClient, db: Session, clock: FixedClock) -> None:
    _, headers = researcher(db, clock)
    for r in (
        client.post("/v1/partners", json={"name": "x"}, headers=headers),
        client.get("/v1/partners", headers=headers),
        client.patch("/v1/partners/1", json={}, headers=headers),
    ):
        assert r.status_code == 403
        assert r.json()["code"] == "admin_required"
    assert client.get("/v1/partners").status_code == 401


def test_create_refuses_unknown_models_duplicates_and_bad_dates(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    create_model(client, admin_headers, "acme/atlas-7b")
    unknown = client.post(
        "/v1/partners", json={"name": "A", "models": ["acme/nope"]}, headers=admin_headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_model"
    assert unknown.json()["models"] == ["acme/nope"]
    twice = client.post(
        "/v1/partners",
        json={"name": "A", "models": ["acme/atlas-7b", {"model": "acme/atlas-7b"}]},
        headers=admin_headers,
    )
    assert twice.json()["code"] == "duplicate_model"
    past = client.post(
        "/v1/partners",
        json={
            "name": "A",
            "models": [{"model": "acme/atlas-7b", "ends_at": clock.now().isoformat()}],
        },
        headers=admin_headers,
    )
    assert past.status_code == 422
    assert past.json()["code"] == "invalid_date"
    create_partner(client, admin_headers, name="A", models=[])
    dup = client.post("/v1/partners", json={"name": "A"}, headers=admin_headers)
    assert dup.status_code == 409
    assert dup.json()["code"] == "partner_exists"
    missing = client.patch("/v1/partners/999999", json={}, headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "partner_not_found"


def test_rotation_returns_a_new_secret_once_and_kills_api_tokens(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    body = create_partner(client, admin_headers, models=[])
    old = body["client_secret"]
    access = issued_token(db, clock, kind="partner_access", partner_id=body["id"])
    download = issued_token(db, clock, kind="download", partner_id=body["id"])
    rotated = check(
        client.patch(
            f"/v1/partners/{body['id']}", json={"rotate_secret": True}, headers=admin_headers
        ),
        200,
    )
    new = rotated["client_secret"]
    assert new.startswith("wgp_")
    assert new != old
    assert rotated["secret_rotated_at"] is not None
    assert verify_partner_secret(db, body["client_id"], old, clock.now()) is None
    assert verify_partner_secret(db, body["client_id"], new, clock.now()) is not None
    db.expire_all()
    assert db.get(IssuedToken, access.jti).revoked_at is not None  # type: ignore[union-attr]
    assert db.get(IssuedToken, download.jti).revoked_at is None  # type: ignore[union-attr]
    plain = check(client.patch(f"/v1/partners/{body['id']}", json={}, headers=admin_headers), 200)
    assert plain["client_secret"] is None
    event = audit_events(db, "partner.updated")[-2]
    assert event.data == {"secret_rotated": True}
    assert new not in str(event.before) + str(event.after)


def test_ending_an_agreement_drops_clearance_and_revokes_that_models_tokens(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    create_model(client, admin_headers, "acme/a")
    create_model(client, admin_headers, "acme/b")
    body = create_partner(client, admin_headers, models=["acme/a", "acme/b"])
    pid = body["id"]
    a, b = _model_id(db, "acme/a"), _model_id(db, "acme/b")
    partner = Principal(kind="partner", id=pid)
    assert clearance_for(db, partner, a, now=clock.now()) == Tier.PARTNER
    tok_a = issued_token(db, clock, partner_id=pid, model_id=a, tier="partner")
    tok_b = issued_token(db, clock, partner_id=pid, model_id=b, tier="partner")
    later = clock.now() + timedelta(days=30)
    out = check(
        client.patch(
            f"/v1/partners/{pid}",
            json={"models": [{"model": "acme/b", "ends_at": later.isoformat()}]},
            headers=admin_headers,
        ),
        200,
    )
    assert {m["model"]: m["active"] for m in out["models"]} == {"acme/a": False, "acme/b": True}
    db.expire_all()
    assert clearance_for(db, partner, a, now=clock.now()) == Tier.OPEN
    assert clearance_for(db, partner, b, now=clock.now()) == Tier.PARTNER
    assert db.get(IssuedToken, tok_a.jti).revoked_reason == "partner agreement ended"  # type: ignore[union-attr]
    assert db.get(IssuedToken, tok_b.jti).revoked_at is None  # type: ignore[union-attr]
    # A dated end takes effect by itself at its instant.
    assert clearance_for(db, partner, b, now=later) == Tier.OPEN
    # Re-adding the model renews the agreement.
    again = check(
        client.patch(
            f"/v1/partners/{pid}", json={"models": ["acme/a", "acme/b"]}, headers=admin_headers
        ),
        200,
    )
    assert all(m["active"] and m["ends_at"] is None for m in again["models"])
    db.expire_all()
    assert clearance_for(db, partner, a, now=later) == Tier.PARTNER


def test_disabling_revokes_everything_and_refuses_the_secret(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    create_model(client, admin_headers, "acme/a")
    body = create_partner(client, admin_headers, models=["acme/a"])
    pid, mid = body["id"], _model_id(db, "acme/a")
    tokens = [
        issued_token(db, clock, kind="partner_access", partner_id=pid),
        issued_token(db, clock, kind="download", partner_id=pid, model_id=mid),
    ]
    out = check(
        client.patch(f"/v1/partners/{pid}", json={"disabled": True}, headers=admin_headers), 200
    )
    assert out["disabled_at"] is not None
    db.expire_all()
    assert all(db.get(IssuedToken, t.jti).revoked_at is not None for t in tokens)  # type: ignore[union-attr]
    assert verify_partner_secret(db, body["client_id"], body["client_secret"], clock.now()) is None
    assert clearance_for(db, Principal(kind="partner", id=pid), mid, now=clock.now()) == Tier.OPEN
    enabled = check(
        client.patch(f"/v1/partners/{pid}", json={"disabled": False}, headers=admin_headers), 200
    )
    assert enabled["disabled_at"] is None
    assert (
        verify_partner_secret(db, body["client_id"], body["client_secret"], clock.now()) is not None
    )


def test_rename_and_secret_expiry(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    create_partner(client, admin_headers, name="Taken", models=[])
    body = create_partner(client, admin_headers, name="Old", models=[])
    clash = client.patch(
        f"/v1/partners/{body['id']}", json={"name": "Taken"}, headers=admin_headers
    )
    assert clash.status_code == 409
    expires = clock.now() + timedelta(days=90)
    out = check(
        client.patch(
            f"/v1/partners/{body['id']}",
            json={"name": "New", "secret_expires_at": expires.isoformat()},
            headers=admin_headers,
        ),
        200,
    )
    assert out["name"] == "New"
    assert out["secret_expires_at"].startswith(expires.date().isoformat())
    assert verify_partner_secret(db, body["client_id"], body["client_secret"], expires) is None
    page = check(client.get("/v1/partners", params={"limit": 1}, headers=admin_headers), 200)
    assert len(page["items"]) == 1
    assert page["next_cursor"]
