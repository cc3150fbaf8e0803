"""Admins subscribe URLs to events; secrets are shown once; unsafe URLs are refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, WebhookDelivery, WebhookSubscription
from app.settings import Settings
from app.webhooks.outbox import enqueue_event
from tests.factories.principals import make_user
from tests.fixtures.parts import change_settings

HOOK = "https://hooks.example.org/weightgate?token=receiver-own-secret"


@pytest.fixture
def private_ok(app: FastAPI, settings: Settings) -> Iterator[None]:
    change_settings(app, webhook_allow_private=True)
    yield
    change_settings(app, webhook_allow_private=settings.webhook_allow_private)


def create(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    resp = client.post("/v1/webhooks", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, object] = resp.json()
    return data


def test_create_returns_the_secret_once_and_never_again(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    created = create(
        client,
        admin_headers,
        url="https://93.184.215.14/hook",
        events=["embargo.lifted", "access.approved", "embargo.lifted"],
        description="lab announcements",
    )
    assert created["events"] == ["access.approved", "embargo.lifted"]
    assert isinstance(created["secret"], str)
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 40
    wid = created["id"]

    one = client.get(f"/v1/webhooks/{wid}", headers=admin_headers)
    assert one.status_code == 200
    listed = client.get("/v1/webhooks", headers=admin_headers).json()
    assert [w["id"] for w in listed["items"]] == [wid]
    for body in (one.json(), listed["items"][0]):
        assert "secret" not in body
        assert body["description"] == "lab announcements"
        assert body["disabled_at"] is None
    assert created["secret"] not in one.text + str(listed)

    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.created"))
    assert event is not None
    assert event.after == {
        "url": "https://93.184.215.14/hook",
        "events": ["access.approved", "embargo.lifted"],
        "include_report_text": False,
    }
    assert created["secret"] not in str(event.after) + str(event.data)


def test_a_chosen_secret_is_used_and_the_audit_log_drops_the_query(
    client: TestClient, admin_headers: dict[str, str], db: Session, private_ok: None
) -> None:
    created = create(
        client,
        admin_headers,
        url=HOOK.replace("hooks.example.org", "127.0.0.1"),
        events=["*"],
        secret="x" * 24,
    )
    assert created["secret"] == "x" * 24
    sub = db.get(WebhookSubscription, created["id"])
    assert sub is not None
    assert sub.secret == "x" * 24
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.created"))
    assert event is not None
    assert event.after is not None
    assert event.after["url"] == "https://127.0.0.1/weightgate"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata"),
        ("http://[fe80::1]/hook", "link-local or cloud metadata"),
        ("http://[::ffff:169.254.169.254]/hook", "link-local or cloud metadata"),
        ("http://127.0.0.1:9999/hook", "loopback, private or reserved"),
        ("http://localhost:9999/hook", "loopback, private or reserved"),
        ("https://10.1.2.3/hook", "loopback, private or reserved"),
        ("https://[fd12::1]/hook", "loopback, private or reserved"),
        ("http://0.0.0.0:80/hook", "link-local or cloud metadata"),
        ("ftp://example.org/hook", "must be http:// or https://"),
        ("https://user:pw@example.org/hook", "must not carry credentials"),
        ("https:///nohost", "has no host"),
        ("https://example.org:99999/hook", "invalid port"),
        ("https://no-such-host.invalid/hook", "cannot resolve"),
        # IPv6 spellings of IPv4 addresses, judged by the address inside.
        ("http://[::7f00:1]/hook", "loopback, private or reserved"),
        ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local or cloud metadata"),
        ("http://[2002:7f00:1::]/hook", "loopback, private or reserved"),
        ("http://[fec0::1]/hook", "loopback, private or reserved"),
    ],
)
def test_unsafe_urls_are_refused(
    client: TestClient, admin_headers: dict[str, str], url: str, fragment: str
) -> None:
    resp = client.post(
        "/v1/webhooks", json={"url": url, "events": ["embargo.lifted"]}, headers=admin_headers
    )
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "webhook_url_refused"
    assert fragment in resp.json()["detail"]
    assert "pw" not in resp.json()["detail"]


def test_metadata_stays_refused_when_private_addresses_are_allowed(
    client: TestClient, admin_headers: dict[str, str], private_ok: None
) -> None:
    for url in (
        "http://169.254.169.254/",
        "http://[fe80::1%25eth0]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
    ):
        resp = client.post(
            "/v1/webhooks", json={"url": url, "events": ["*"]}, headers=admin_headers
        )
        assert resp.status_code == 422, url
    ok = client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9999/hook", "events": ["*"]},
        headers=admin_headers,
    )
    assert ok.status_code == 201


def test_the_server_itself_is_refused(
    client: TestClient, admin_headers: dict[str, str], private_ok: None, settings: Settings
) -> None:
    # Unset, the public URL of the test settings is the default http://127.0.0.1:8000.
    assert settings.effective_public_url == "http://127.0.0.1:8000"
    for url in (
        "http://127.0.0.1:8000/v1/webhooks",
        "http://localhost:8000/x",
        "http://[::ffff:127.0.0.1]:8000/x",
        "http://[::7f00:1]:8000/x",
        "http://127.0.0.2:8000/x",
    ):
        resp = client.post(
            "/v1/webhooks", json={"url": url, "events": ["*"]}, headers=admin_headers
        )
        assert resp.status_code == 422
        assert "this server itself" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "https://93.184.215.14/", "events": ["embargo.exploded"]}, "unknown_event_type"),
        ({"url": "https://93.184.215.14/", "events": []}, "validation_error"),
        ({"url": "https://93.184.215.14/", "events": ["*", "embargo.lifted"]}, "validation_error"),
        (
            {"url": "https://93.184.215.14/", "events": ["*"], "secret": "tiny-pw"},
            "validation_error",
        ),
        ({"url": "https://93.184.215.14/", "events": ["*"], "extra": 1}, "validation_error"),
    ],
)
def test_bad_bodies_are_problems(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, object], code: str
) -> None:
    resp = client.post("/v1/webhooks", json=body, headers=admin_headers)
    assert resp.status_code == 422
    assert resp.json()["code"] == code
    assert "tiny-pw" not in resp.text


def test_only_admins_manage_webhooks(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    _, key = make_user(db, clock, role="researcher")
    researcher = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/webhooks").status_code == 401
    resp = client.get("/v1/webhooks", headers=researcher)
    assert resp.status_code == 403
    assert resp.json()["code"] == "admin_required"
    resp = client.post(
        "/v1/webhooks", json={"url": "https://93.184.215.14/", "events": ["*"]}, headers=researcher
    )
    assert resp.status_code == 403
    assert client.get("/v1/webhooks/1/deliveries", headers=researcher).status_code == 403
    assert client.get("/v1/webhooks/999", headers=admin_headers).json()["code"] == (
        "webhook_not_found"
    )


def test_delete_stops_deliveries_and_keeps_the_history(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    wid = create(client, admin_headers, url="https://93.184.215.14/h", events=["*"])["id"]
    assert enqueue_event(db, event_type="access.approved", data={"x": 1}, now=clock.now()) == 1
    db.commit()

    assert client.delete(f"/v1/webhooks/{wid}", headers=admin_headers).status_code == 204
    assert client.delete(f"/v1/webhooks/{wid}", headers=admin_headers).status_code == 404
    assert client.get("/v1/webhooks", headers=admin_headers).json()["items"] == []
    listed = client.get("/v1/webhooks?include_deleted=true", headers=admin_headers).json()
    assert [w["id"] for w in listed["items"]] == [wid]
    assert listed["items"][0]["disabled_at"] is not None

    (delivery,) = client.get(f"/v1/webhooks/{wid}/deliveries", headers=admin_headers).json()[
        "items"
    ]
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "subscription deleted"
    assert delivery["attempts"] == []
    # New events no longer reach a deleted subscription.
    assert enqueue_event(db, event_type="access.approved", data={}, now=clock.now()) == 0
    assert db.scalar(select(WebhookDelivery.status)) == "failed"
    deleted = db.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.deleted"))
    assert deleted is not None
    assert deleted.data == {"abandoned_deliveries": 1}


def test_deliveries_are_listed_newest_first_with_pages_and_a_status_filter(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    wid = create(client, admin_headers, url="https://93.184.215.14/h", events=["*"])["id"]
    for i in range(5):
        enqueue_event(db, event_type="release.published", data={"i": i}, now=clock.now())
    db.commit()
    url = f"/v1/webhooks/{wid}/deliveries"
    first = client.get(url, params={"limit": 3}, headers=admin_headers).json()
    assert [d["payload"]["data"]["i"] for d in first["items"]] == [4, 3, 2]
    second = client.get(
        url, params={"limit": 3, "cursor": first["next_cursor"]}, headers=admin_headers
    ).json()
    assert [d["payload"]["data"]["i"] for d in second["items"]] == [1, 0]
    assert second["next_cursor"] is None
    item = second["items"][0]
    assert item["status"] == "pending"
    assert item["attempt_count"] == 0
    assert item["next_attempt_at"] is not None
    assert item["event_type"] == "release.published"
    assert (
        client.get(url, params={"status": "delivered"}, headers=admin_headers).json()["items"] == []
    )
    bad = client.get(url, params={"status": "exploded"}, headers=admin_headers)
    assert bad.status_code == 422
    assert client.get(url, params={"cursor": "!!"}, headers=admin_headers).json()["code"] == (
        "invalid_cursor"
    )
