from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import User
from app.settings import Settings
from tests.factories.access import audit_events
from tests.factories.catalogue import check


def test_registration_is_off_by_default(client: TestClient) -> None:
    r = client.post("/v1/register", json={"email": "new@example.org", "name": "New"})
    assert r.status_code == 403
    assert r.json()["code"] == "registration_closed"


def test_open_registration_creates_a_researcher(
    client: TestClient, settings: Settings, db: Session
) -> None:
    settings.open_registration = True
    body = check(client.post("/v1/register", json={"email": "New@Example.ORG", "name": "New"}), 201)
    assert body["user"]["email"] == "New@example.org"
    assert body["user"]["role"] == "researcher"
    key = body["api_key"]
    assert key.startswith("wg_")
    me = check(client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}), 200)
    assert me["id"] == body["user"]["id"]
    created = audit_events(db, "user.created")[-1]
    assert created.actor == "anonymous"
    assert created.after == {"email": "New@example.org", "role": "researcher", "partner_id": None}
    again = client.post("/v1/register", json={"email": "new@example.org"})
    assert again.status_code == 409
    assert again.json()["code"] == "user_exists"


def test_registration_refuses_bad_input_and_role_escalation(
    client: TestClient, settings: Settings
) -> None:
    settings.open_registration = True
    bad = client.post("/v1/register", json={"email": "not-an-email"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_email"
    escalate = client.post("/v1/register", json={"email": "x@example.org", "role": "admin"})
    assert escalate.status_code == 422
    assert escalate.json()["errors"][0]["loc"] == ["body", "role"]


def test_sign_up_attempts_are_limited_per_address(
    app: FastAPI, client: TestClient, settings: Settings, clock: FixedClock, db: Session
) -> None:
    settings.open_registration = True
    settings.quota_registrations_per_hour = 3
    # T0 is on the hour: the window ends in exactly an hour.
    clock.set(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    check(client.post("/v1/register", json={"email": "a@example.org"}), 201)
    # A refused attempt counts too: the limit is what bounds probing for taken emails.
    assert client.post("/v1/register", json={"email": "a@example.org"}).status_code == 409
    assert client.post("/v1/register", json={"email": "bad"}).status_code == 422
    clock.advance(minutes=15)
    over = client.post("/v1/register", json={"email": "b@example.org"})
    assert over.status_code == 429
    assert over.json()["code"] == "quota_registrations"
    assert over.json()["retry_after"] == 45 * 60
    assert over.headers["Retry-After"] == str(45 * 60)
    assert "per hour" in over.json()["detail"]
    assert db.scalar(select(User.id).where(User.email == "b@example.org")) is None

    # Another address has its own allowance.
    with TestClient(app, client=("198.51.100.7", 40000)) as elsewhere:
        check(elsewhere.post("/v1/register", json={"email": "c@example.org"}), 201)

    # The next hour starts from zero.
    clock.advance(minutes=45)
    check(client.post("/v1/register", json={"email": "b@example.org"}), 201)


def test_registration_quota_of_zero_is_off(client: TestClient, settings: Settings) -> None:
    settings.open_registration = True
    settings.quota_registrations_per_hour = 0
    for i in range(12):
        check(client.post("/v1/register", json={"email": f"u{i}@example.org"}), 201)
