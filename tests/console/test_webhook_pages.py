"""The webhooks pages in-process: subscribing from a form (the secret shown once, the API's
URL rules and errors), URLs with markup shown as text, deliveries with their attempts,
redelivery through the webhooks service (audited, 409 while pending) and deletion."""

from __future__ import annotations

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, User, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.webhooks.outbox import enqueue_event
from tests.console.signin import ORIGIN, sign_in

MARKUP_URL = "https://93.184.215.14/hook?next=<script>alert(1)</script>"


def post(client: TestClient, path: str, csrf: str, **data: object) -> httpx2.Response:
    return client.post(
        path, data={"csrf_token": csrf, **data}, headers={"Origin": ORIGIN}, follow_redirects=False
    )


def test_an_admin_subscribes_a_url_and_sees_it_as_text(
    client: TestClient, db: Session, admin_key: str
) -> None:
    csrf = sign_in(client, admin_key)
    empty = client.get("/console/webhooks")
    assert empty.status_code == 200
    assert "No subscription." in empty.text

    refused = post(client, "/console/webhooks", csrf, url="http://10.0.0.1/x", events=["*"])
    assert refused.status_code == 422
    assert "url refused" in refused.text
    assert 'value="http://10.0.0.1/x"' in refused.text
    no_events = post(client, "/console/webhooks", csrf, url=MARKUP_URL)
    assert no_events.status_code == 422

    made = post(
        client,
        "/console/webhooks",
        csrf,
        url=MARKUP_URL,
        events=["access.approved", "embargo.lifted"],
        description="<b>lab</b>",
    )
    assert made.status_code == 200, made.text
    secret = db.scalars(select(AuditEvent).where(AuditEvent.action == "webhook.created")).one()
    admin_id = db.scalar(select(User.id).where(User.role == "admin"))
    assert secret.actor == f"user:{admin_id}"
    html = made.text
    hook = f"/console/webhooks/{db.scalars(select(WebhookSubscription.id)).one()}"
    assert "whsec_" in html  # shown once, here
    for page in (
        html,
        client.get("/console/webhooks").text,
        client.get(hook).text,
    ):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<b>lab</b>" not in page
    listed = client.get("/console/webhooks").text
    assert "whsec_" not in listed
    assert "access.approved, embargo.lifted" in listed
    # The Origin and CSRF checks come first: nothing is created without them.
    forged = client.post(
        "/console/webhooks",
        data={"url": "https://93.184.215.14/other", "events": "*"},
        headers={"Origin": ORIGIN},
    )
    assert forged.status_code == 403
    assert "93.184.215.14/other" not in client.get("/console/webhooks").text


def test_deliveries_are_listed_redelivered_and_the_webhook_deleted(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    csrf = sign_in(client, admin_key)
    post(client, "/console/webhooks", csrf, url="https://93.184.215.14/h", events=["*"])
    wid = db.scalars(select(WebhookSubscription.id)).one()
    hook = f"/console/webhooks/{wid}"
    enqueue_event(db, event_type="release.published", data={"n": 1}, now=clock.now())
    enqueue_event(db, event_type="access.approved", data={"n": 2}, now=clock.now())
    failed, pending = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    db.add(WebhookAttempt(delivery_id=failed.id, at=clock.now(), status_code=502, duration_ms=40))
    db.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == failed.id)
        .values(status="failed", attempts=1, last_error="gave up: HTTP 502")
    )
    db.commit()

    page = client.get(hook).text
    assert "gave up: HTTP 502" in page
    assert "HTTP 502" in page
    assert "40 ms" in page
    assert f'aria-label="Redeliver delivery {failed.id}"' in page
    assert f'aria-label="Redeliver delivery {pending.id}"' not in page  # pending: no button
    only_failed = client.get(f"{hook}?status=failed").text
    assert "release.published" in only_failed
    assert "access.approved" not in only_failed

    url = f"{hook}/deliveries/{failed.id}/redeliver"
    assert post(client, url, "x" * 43).status_code == 403
    done = post(client, url, csrf)
    assert done.status_code == 303
    shown = client.get(done.headers["location"]).text
    assert f"Delivery {failed.id}: Queued for redelivery" in shown
    api = client.get(f"/v1/webhooks/{wid}/deliveries?status=pending", headers=admin_headers).json()
    assert {d["id"] for d in api["items"]} == {failed.id, pending.id}
    again = post(client, url, csrf)
    assert again.status_code == 409
    assert "still pending" in again.text
    assert (
        db.scalar(select(AuditEvent.data).where(AuditEvent.action == "webhook.redelivered")) or {}
    ).get("previous_status") == "failed"
    missing = post(client, f"{hook}/deliveries/{pending.id + 999}/redeliver", csrf)
    assert missing.status_code == 404

    gone = post(client, f"{hook}/delete", csrf)
    assert gone.status_code == 303
    after = client.get(gone.headers["location"]).text
    assert "Deleted: nothing more is sent" in after
    assert "Delete this webhook" not in after
    assert "Redeliver delivery" not in after
    assert "No subscription." in client.get("/console/webhooks").text
    assert hook in client.get("/console/webhooks?include_deleted=true").text
