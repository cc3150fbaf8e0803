from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

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
    assert created.after == {"email": "New@example.org", "role": "researcher"}
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
