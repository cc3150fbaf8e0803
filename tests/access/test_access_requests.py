from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import Grant
from tests.factories.access import audit_events, enqueued, researcher, subscribe
from tests.factories.catalogue import check, publish_release, sha256

FIELDS = [
    {"name": "affiliation", "type": "text", "required": True},
    {"name": "contact", "type": "email", "required": False},
    {"name": "use", "type": "select", "options": ["research", "education"], "required": True},
    {"name": "country", "type": "country", "required": True},
    {"name": "no_military", "type": "checkbox", "required": True},
]
GOOD = {"affiliation": " Uni ", "use": "research", "country": "fr", "no_military": True}
LICENSE = "Be nice."


def published(
    client: TestClient,
    admin_headers: dict[str, str],
    clock: FixedClock,
    model: str = "acme/atlas-7b",
    **model_fields: Any,
) -> None:
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        model=model,
        components={
            "weights": [("research", now - timedelta(hours=1)), ("open", now + timedelta(days=30))],
            "config": [("open", now - timedelta(days=1))],
        },
        files={"w.safetensors": ("weights", b"w" * 10), "config.json": ("config", b"{}")},
    )
    if model_fields:
        check(client.patch(f"/v1/models/{model}", json=model_fields, headers=admin_headers), 200)


def ask(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], model: str = "acme/atlas-7b"
) -> Any:
    return client.post(f"/v1/models/{model}/access-requests", json=body, headers=headers)


@pytest.fixture
def atlas(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> None:
    published(client, admin_headers, clock, request_fields=FIELDS)


@pytest.mark.usefixtures("atlas")
def test_request_records_answers_and_license_hash(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    subscribe(db, clock, ["access.requested"])
    user, headers = researcher(db, clock)
    body = check(ask(client, headers, {"answers": GOOD, "accept_license": True}), 201)
    assert body["status"] == "pending"
    assert body["user"] == {"id": user.id, "email": user.email}
    assert body["model"] == "acme/atlas-7b"
    assert body["answers"] == {
        "affiliation": "Uni",
        "use": "research",
        "country": "FR",
        "no_military": True,
    }
    assert body["license_sha256"] == sha256(LICENSE.encode())
    created = audit_events(db, "access_request.created")[-1]
    assert created.actor == f"user:{user.id}"
    assert created.target_id == str(body["id"])
    (event,) = enqueued(db, "access.requested")
    assert event["data"] == {
        "request_id": body["id"],
        "model": "acme/atlas-7b",
        "user": {"id": user.id, "email": user.email},
    }
    mine = check(client.get("/v1/me/access-requests", headers=headers), 200)
    assert [r["id"] for r in mine["items"]] == [body["id"]]
    assert check(client.get(f"/v1/access-requests/{body['id']}", headers=headers), 200) == body


@pytest.mark.usefixtures("atlas")
@pytest.mark.parametrize(
    ("answers", "field", "why"),
    [
        ({**GOOD, "affiliation": "  "}, "affiliation", "is required"),
        ({k: v for k, v in GOOD.items() if k != "use"}, "use", "is required"),
        ({**GOOD, "use": "military"}, "use", "offered options"),
        ({**GOOD, "country": "France"}, "country", "country code"),
        ({**GOOD, "no_military": False}, "no_military", "must be checked"),
        ({**GOOD, "no_military": "yes"}, "no_military", "true or false"),
        ({**GOOD, "contact": "nope"}, "contact", "email"),
        ({**GOOD, "affiliation": True}, "affiliation", "must be text"),
        ({**GOOD, "affiliation": "x" * 2001}, "affiliation", "longer than"),
        ({**GOOD, "affiliation": "a\x01b"}, "affiliation", "control characters"),
        ({**GOOD, "shoe_size": "44"}, "shoe_size", "not a field"),
    ],
)
def test_answers_are_validated_against_the_models_fields(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    answers: dict[str, Any],
    field: str,
    why: str,
) -> None:
    _, headers = researcher(db, clock)
    r = ask(client, headers, {"answers": answers, "accept_license": True})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_answers"
    assert r.json()["field"] == field
    assert why in r.json()["detail"]


@pytest.mark.usefixtures("atlas")
def test_license_must_be_accepted_and_current(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    _, headers = researcher(db, clock)
    r = ask(client, headers, {"answers": GOOD, "accept_license": False})
    assert r.status_code == 422
    assert r.json()["code"] == "license_not_accepted"
    missing = ask(client, headers, {"answers": GOOD})
    assert missing.status_code == 422
    stale = ask(
        client, headers, {"answers": GOOD, "accept_license": True, "license_sha256": "0" * 64}
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "license_changed"
    assert stale.json()["license_sha256"] == sha256(LICENSE.encode())
    ok = ask(
        client,
        headers,
        {"answers": GOOD, "accept_license": True, "license_sha256": sha256(LICENSE.encode())},
    )
    assert ok.status_code == 201
    status = ask(client, headers, {"answers": GOOD, "accept_license": True, "status": "approved"})
    assert status.status_code == 422  # mass assignment of a status is refused


@pytest.mark.usefixtures("atlas")
def test_one_pending_request_per_user_and_model(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    _, headers = researcher(db, clock)
    first = check(ask(client, headers, {"answers": GOOD, "accept_license": True}), 201)
    again = ask(client, headers, {"answers": GOOD, "accept_license": True})
    assert again.status_code == 409
    assert again.json()["code"] == "request_pending"
    check(
        client.post(
            f"/v1/access-requests/{first['id']}/deny",
            json={"reason": "incomplete"},
            headers=admin_headers,
        ),
        200,
    )
    # Denied: the user may ask again.
    check(ask(client, headers, {"answers": GOOD, "accept_license": True}), 201)


@pytest.mark.usefixtures("atlas")
def test_approval_grants_research_access(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    subscribe(db, clock, ["access.approved"])
    user, headers = researcher(db, clock)
    manifest = "/v1/models/acme/atlas-7b/releases/v1/manifest"
    before = check(client.get(manifest, headers=headers), 200)
    assert before["clearance"] == "open"
    assert [f["path"] for f in before["files"]] == ["config.json", "signatures/config.sig"]
    req = check(ask(client, headers, {"answers": GOOD, "accept_license": True}), 201)
    approved = check(
        client.post(f"/v1/access-requests/{req['id']}/approve", headers=admin_headers), 200
    )
    assert approved["status"] == "approved"
    assert approved["decided_by"] is not None
    after = check(client.get(manifest, headers=headers), 200)
    assert after["clearance"] == "research"
    assert [f["path"] for f in after["files"]] == [
        "config.json",
        "signatures/config.sig",
        "signatures/weights.sig",
        "w.safetensors",
    ]
    grant = db.scalar(select(Grant).where(Grant.user_id == user.id))
    assert grant is not None
    assert grant.request_id == req["id"]
    event = audit_events(db, "access_request.approved")[-1]
    assert event.target_id == str(req["id"])
    assert event.before == {"status": "pending"}
    assert event.after == {"status": "approved", "reason": None}
    (hook,) = enqueued(db, "access.approved")
    assert hook["data"]["request_id"] == req["id"]
    twice = client.post(f"/v1/access-requests/{req['id']}/approve", headers=admin_headers)
    assert twice.status_code == 409
    assert twice.json()["code"] == "request_not_pending"
    granted = ask(client, headers, {"answers": GOOD, "accept_license": True})
    assert granted.status_code == 409
    assert granted.json()["code"] == "already_granted"


@pytest.mark.usefixtures("atlas")
def test_denial_needs_a_reason_and_grants_nothing(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    subscribe(db, clock, ["access.denied"])
    user, headers = researcher(db, clock)
    req = check(ask(client, headers, {"answers": GOOD, "accept_license": True}), 201)
    no_reason = client.post(f"/v1/access-requests/{req['id']}/deny", json={}, headers=admin_headers)
    assert no_reason.status_code == 422
    denied = check(
        client.post(
            f"/v1/access-requests/{req['id']}/deny",
            json={"reason": "not a researcher"},
            headers=admin_headers,
        ),
        200,
    )
    assert denied["status"] == "denied"
    assert denied["reason"] == "not a researcher"
    assert db.scalar(select(Grant).where(Grant.user_id == user.id)) is None
    (hook,) = enqueued(db, "access.denied")
    assert hook["data"]["reason"] == "not a researcher"
    unknown = client.post("/v1/access-requests/999999/approve", headers=admin_headers)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "access_request_not_found"


def test_auto_approve_models_grant_at_once(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    published(client, admin_headers, clock, auto_approve=True)
    user, headers = researcher(db, clock)
    body = check(ask(client, headers, {"answers": {}, "accept_license": True}), 201)
    assert body["status"] == "approved"
    assert body["reason"] == "auto-approved"
    assert db.scalar(select(Grant).where(Grant.user_id == user.id, Grant.revoked_at.is_(None)))
    auto = audit_events(db, "access_request.approved")[-1]
    assert auto.actor == "system"


def test_hidden_and_unknown_models_look_the_same(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    publish_release(
        client,
        admin_headers,
        model="acme/secret",
        components={"weights": [("partner", clock.now() + timedelta(days=1))]},
    )
    _, headers = researcher(db, clock)
    body = {"answers": {}, "accept_license": True}
    hidden = ask(client, headers, body, model="acme/secret")
    unknown = ask(client, headers, body, model="acme/secreu")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["code"] == unknown.json()["code"] == "model_not_found"
    assert hidden.json()["detail"].replace("secret", "X") == unknown.json()["detail"].replace(
        "secreu", "X"
    )


@pytest.mark.usefixtures("atlas")
def test_listing_is_admin_only_filterable_and_private_to_owners(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    published(client, admin_headers, clock, model="acme/other")
    a, a_headers = researcher(db, clock)
    _, b_headers = researcher(db, clock)
    ra = check(ask(client, a_headers, {"answers": GOOD, "accept_license": True}), 201)
    rb = check(ask(client, b_headers, {"answers": GOOD, "accept_license": True}), 201)
    rc = check(
        ask(client, b_headers, {"answers": {}, "accept_license": True}, model="acme/other"), 201
    )
    check(client.post(f"/v1/access-requests/{rb['id']}/approve", headers=admin_headers), 200)
    assert client.get("/v1/access-requests", headers=a_headers).status_code == 403
    peek = client.get(f"/v1/access-requests/{rb['id']}", headers=a_headers)
    assert peek.status_code == 404

    def ids(**params: Any) -> list[int]:
        page = check(client.get("/v1/access-requests", params=params, headers=admin_headers), 200)
        return [r["id"] for r in page["items"]]

    assert ids() == [ra["id"], rb["id"], rc["id"]]
    assert ids(status="pending") == [ra["id"], rc["id"]]
    assert ids(model="acme/other") == [rc["id"]]
    assert ids(user=a.id) == [ra["id"]]
    assert ids(status="pending", model="acme/atlas-7b") == [ra["id"]]
    page = check(client.get("/v1/access-requests", params={"limit": 2}, headers=admin_headers), 200)
    rest = check(
        client.get(
            "/v1/access-requests", params={"cursor": page["next_cursor"]}, headers=admin_headers
        ),
        200,
    )
    assert [r["id"] for r in rest["items"]] == [rc["id"]]
    assert (
        client.get(
            "/v1/access-requests", params={"status": "odd"}, headers=admin_headers
        ).status_code
        == 422
    )
    mine = check(client.get("/v1/me/access-requests", headers=b_headers), 200)
    assert [r["id"] for r in mine["items"]] == [rb["id"], rc["id"]]


@pytest.mark.usefixtures("atlas")
def test_partners_and_anonymous_cannot_request(client: TestClient) -> None:
    r = ask(client, {}, {"answers": GOOD, "accept_license": True})
    assert r.status_code == 401


@pytest.mark.usefixtures("atlas")
def test_admins_need_no_request(client: TestClient, admin_headers: dict[str, str]) -> None:
    r = ask(client, admin_headers, {"answers": GOOD, "accept_license": True})
    assert r.status_code == 409
    assert r.json()["code"] == "already_cleared"
