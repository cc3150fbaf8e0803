from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import IssuedToken, Model, User
from tests.factories.access import audit_events, enqueued, issued_token, researcher, subscribe
from tests.factories.catalogue import check, publish_release

MANIFEST = "/v1/models/acme/atlas-7b/releases/v1/manifest"
GRANTS = "/v1/models/acme/atlas-7b/grants"


def granted_researcher(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> tuple[User, dict[str, str]]:
    user, headers = researcher(db, clock)
    req = check(
        client.post(
            "/v1/models/acme/atlas-7b/access-requests",
            json={"answers": {}, "accept_license": True},
            headers=headers,
        ),
        201,
    )
    check(client.post(f"/v1/access-requests/{req['id']}/approve", headers=admin_headers), 200)
    return user, headers


def setup_model(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> None:
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        components={
            "weights": [("research", now - timedelta(hours=1))],
            "config": [("open", now - timedelta(hours=1))],
        },
        files={"w.bin": ("weights", b"w"), "config.json": ("config", b"{}")},
    )


def test_grants_are_listed_and_readable_by_id_or_email(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    setup_model(client, admin_headers, clock)
    a, _ = granted_researcher(client, admin_headers, db, clock)
    b, _ = granted_researcher(client, admin_headers, db, clock)
    page = check(client.get(GRANTS, headers=admin_headers), 200)
    assert [g["user"] for g in page["items"]] == [
        {"id": a.id, "email": a.email},
        {"id": b.id, "email": b.email},
    ]
    assert all(g["request_id"] is not None for g in page["items"])
    by_id = check(client.get(f"{GRANTS}/{a.id}", headers=admin_headers), 200)
    by_email = check(client.get(f"{GRANTS}/{a.email}", headers=admin_headers), 200)
    assert by_id == by_email
    assert by_id["revoked_at"] is None
    nobody = client.get(f"{GRANTS}/nobody@example.org", headers=admin_headers)
    assert nobody.status_code == 404
    assert nobody.json()["code"] == "user_not_found"
    _, headers = researcher(db, clock)
    assert client.get(GRANTS, headers=headers).status_code == 403


def test_revoking_is_immediate_and_kills_the_users_tokens_for_the_model(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    setup_model(client, admin_headers, clock)
    subscribe(db, clock, ["grant.revoked"])
    user, headers = granted_researcher(client, admin_headers, db, clock)
    model_id = db.query(Model.id).filter_by(name="atlas-7b").scalar()
    mine = issued_token(db, clock, user_id=user.id, model_id=model_id, tier="research")
    elsewhere = issued_token(db, clock, user_id=user.id, model_id=None, tier="open")
    assert [f["path"] for f in check(client.get(MANIFEST, headers=headers), 200)["files"]] == [
        "config.json",
        "signatures/config.sig",
        "signatures/weights.sig",
        "w.bin",
    ]
    r = client.delete(
        f"{GRANTS}/{user.email}", params={"reason": "left the lab"}, headers=admin_headers
    )
    assert r.status_code == 204
    after = check(client.get(MANIFEST, headers=headers), 200)
    assert after["clearance"] == "open"
    assert [f["path"] for f in after["files"]] == ["config.json", "signatures/config.sig"]
    db.expire_all()
    assert db.get(IssuedToken, mine.jti).revoked_reason == "access grant revoked"  # type: ignore[union-attr]
    assert db.get(IssuedToken, elsewhere.jti).revoked_at is None  # type: ignore[union-attr]
    event = audit_events(db, "grant.revoked")[-1]
    assert event.before == {"model": "acme/atlas-7b", "user": user.id, "active": True}
    assert event.after == {"model": "acme/atlas-7b", "user": user.id, "active": False}
    assert event.data == {"reason": "left the lab", "tokens_revoked": 1}
    (hook,) = enqueued(db, "grant.revoked")
    assert hook["data"] == {
        "model": "acme/atlas-7b",
        "user": {"id": user.id, "email": user.email},
        "reason": "left the lab",
    }
    history = check(client.get(f"{GRANTS}/{user.id}", headers=admin_headers), 200)
    assert history["revoke_reason"] == "left the lab"
    assert check(client.get(GRANTS, headers=admin_headers), 200)["items"] == []
    all_ = check(client.get(GRANTS, params={"include_revoked": True}, headers=admin_headers), 200)
    assert len(all_["items"]) == 1
    again = client.delete(f"{GRANTS}/{user.id}", headers=admin_headers)
    assert again.status_code == 404
    assert again.json()["code"] == "grant_not_found"
    # The user may ask again once revoked.
    check(
        client.post(
            "/v1/models/acme/atlas-7b/access-requests",
            json={"answers": {}, "accept_license": True},
            headers=headers,
        ),
        201,
    )


def test_grants_of_unknown_model_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    r = client.get("/v1/models/acme/nothing/grants", headers=admin_headers)
    assert r.status_code == 404
    assert r.json()["code"] == "model_not_found"
