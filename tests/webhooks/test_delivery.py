"""Deliveries: signed POSTs, retried with backoff (on a FixedClock), leased, given up at the
horizon, and re-checked against the address rules right before sending."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import FixedClock
from app.models import AuditEvent, WebhookAttempt, WebhookDelivery
from app.settings import Settings
from app.webhooks.delivery import (
    AttemptResult,
    backoff_seconds,
    claim_due_deliveries,
    record_attempt,
)
from app.webhooks.outbox import enqueue_event
from app.webhooks.signing import verify_signature
from app.webhooks.worker import DeliveryWorker
from tests.factories.principals import make_user
from tests.factories.schedules import make_subscription
from tests.fixtures.receiver import Receiver, fail_first, webhook_receiver

SECRET = "test-signing-secret-0123456789"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_retry_base_seconds": 10.0,
            "webhook_retry_max_seconds": 600.0,
            "webhook_horizon_seconds": 3600,
            "webhook_concurrency": 1,
            "webhook_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def worker(
    session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> DeliveryWorker:
    return DeliveryWorker(
        sessions=session_factory, clock=clock, settings=settings, rng=random.Random(7)
    )


def run_once(w: DeliveryWorker) -> int:
    async def go() -> int:
        async with w.client() as client:
            return await w.run_once(client)

    return asyncio.run(go())


def test_a_delivery_is_a_signed_post_of_the_event(
    db: Session,
    clock: FixedClock,
    session_factory: sessionmaker[Session],
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    make_subscription(db, clock.now(), url=receiver.url, events=["access.approved"], secret=SECRET)
    enqueue_event(
        db,
        event_type="access.approved",
        data={"model": "acme/x"},
        now=clock.now(),
        event_id="evt_1",
    )
    db.commit()

    assert run_once(worker(session_factory, clock, hook_settings)) == 1

    (got,) = receiver.snapshot()
    assert got.path == "/hooks/weightgate"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-weightgate-event"] == "access.approved"
    assert got.headers["x-weightgate-delivery"] == "evt_1"
    assert got.headers["x-weightgate-timestamp"] == str(int(clock.now().timestamp()))
    assert got.headers["host"] == receiver.url.split("/")[2]
    assert verify_signature(
        SECRET,
        timestamp=got.headers["x-weightgate-timestamp"],
        body=got.body,
        header=got.headers["x-weightgate-signature"],
        now=clock.now().timestamp(),
    )
    assert not verify_signature(
        "another-secret",
        timestamp=got.headers["x-weightgate-timestamp"],
        body=got.body,
        header=got.headers["x-weightgate-signature"],
        now=clock.now().timestamp(),
    )
    assert json.loads(got.body) == {
        "id": "evt_1",
        "type": "access.approved",
        "created_at": clock.now().isoformat(),
        "data": {"model": "acme/x"},
    }
    delivery = db.scalar(select(WebhookDelivery).execution_options(populate_existing=True))
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == (
        "delivered",
        1,
        clock.now(),
    )
    assert delivery.locked_until is None
    # Nothing is due any more.
    assert run_once(worker(session_factory, clock, hook_settings)) == 0


def test_failures_are_retried_with_backoff_and_the_same_idempotency_id(
    db: Session,
    clock: FixedClock,
    session_factory: sessionmaker[Session],
    hook_settings: Settings,
    receiver: Receiver,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    receiver.responder = fail_first(2)
    sub = make_subscription(db, clock.now(), url=receiver.url, events=["*"], secret=SECRET)
    enqueue_event(db, event_type="embargo.lifted", data={}, now=clock.now(), event_id="evt_lift")
    db.commit()
    w = worker(session_factory, clock, hook_settings)
    start = clock.now()

    assert run_once(w) == 1  # 500
    d = db.scalar(select(WebhookDelivery).execution_options(populate_existing=True))
    assert d is not None
    first_wait = (d.next_attempt_at - start).total_seconds()
    assert 5 <= first_wait <= 10  # base 10 s, jitter between half and all of it
    assert (d.status, d.attempts, d.last_error) == ("pending", 1, "HTTP 500")

    clock.advance(seconds=first_wait - 1)
    assert run_once(w) == 0  # not yet
    clock.set(d.next_attempt_at)
    assert run_once(w) == 1  # 500 again
    db.refresh(d)
    second_wait = (d.next_attempt_at - clock.now()).total_seconds()
    assert 10 <= second_wait <= 20  # doubled
    clock.set(d.next_attempt_at)
    assert run_once(w) == 1  # the receiver has recovered
    db.refresh(d)
    assert (d.status, d.attempts, d.last_error) == ("delivered", 3, None)

    got = receiver.snapshot()
    assert [r.status for r in got] == [500, 500, 200]
    assert {r.event_id for r in got} == {"evt_lift"}
    # Each attempt is signed with its own timestamp.
    stamps = [int(r.headers["x-weightgate-timestamp"]) for r in got]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 3

    listed = client.get(f"/v1/webhooks/{sub.id}/deliveries", headers=admin_headers).json()
    (item,) = listed["items"]
    assert item["event_id"] == "evt_lift"
    assert item["status"] == "delivered"
    assert item["attempt_count"] == 3
    assert item["next_attempt_at"] is None
    assert [a["status_code"] for a in item["attempts"]] == [500, 500, 200]
    assert [a["error"] for a in item["attempts"]] == [None, None, None]


def test_a_delivery_is_given_up_after_the_horizon(
    db: Session,
    clock: FixedClock,
    session_factory: sessionmaker[Session],
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    receiver.responder = lambda _req, _earlier: 503
    make_subscription(db, clock.now(), url=receiver.url, events=["*"])
    enqueue_event(db, event_type="token.revoked", data={}, now=clock.now())
    db.commit()
    short = hook_settings.model_copy(update={"webhook_horizon_seconds": 60})
    w = worker(session_factory, clock, short)
    horizon = clock.now() + timedelta(seconds=60)
    for _ in range(20):
        assert run_once(w) == 1
        d = db.scalar(select(WebhookDelivery).execution_options(populate_existing=True))
        assert d is not None
        if d.status != "pending":
            break
        assert d.next_attempt_at <= horizon
        clock.set(d.next_attempt_at)
    assert d is not None
    assert d.status == "failed"
    assert d.last_error == "gave up: HTTP 503"
    assert d.attempts == len(receiver.snapshot()) >= 3
    clock.advance(hours=2)
    assert run_once(w) == 0


def test_an_admin_redelivers_a_failed_delivery_through_the_loop(
    db: Session,
    clock: FixedClock,
    session_factory: sessionmaker[Session],
    hook_settings: Settings,
    receiver: Receiver,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    receiver.responder = fail_first(1, status=503)
    sub = make_subscription(db, clock.now(), url=receiver.url, events=["*"], secret=SECRET)
    other = make_subscription(db, clock.now(), url=receiver.url, events=["*"])
    enqueue_event(db, event_type="access.approved", data={"n": 1}, now=clock.now(), event_id="e1")
    db.commit()
    first, elsewhere = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    short = hook_settings.model_copy(update={"webhook_horizon_seconds": 1})
    w = worker(session_factory, clock, short)
    assert run_once(w) == 2  # ours fails (503) past the horizon: failed; the other is delivered
    url = f"/v1/webhooks/{sub.id}/deliveries/{first.id}/redeliver"
    clock.advance(hours=1)

    resp = client.post(url, headers=admin_headers)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert (body["status"], body["attempt_count"], body["last_error"]) == ("pending", 1, None)
    assert body["next_attempt_at"] == clock.now().isoformat().replace("+00:00", "Z")
    assert [a["status_code"] for a in body["attempts"]] == [503]
    # Pending (queued, then leased): a second redelivery is refused, nothing changes.
    again = client.post(url, headers=admin_headers)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "delivery_in_flight"

    assert run_once(w) == 1
    item = client.get(f"/v1/webhooks/{sub.id}/deliveries", headers=admin_headers).json()["items"][0]
    assert (item["status"], item["attempt_count"]) == ("delivered", 2)
    assert [a["status_code"] for a in item["attempts"]] == [503, 200]
    ours = [r for r in receiver.snapshot() if r.headers["x-weightgate-signature"]]
    assert [r.event_id for r in ours] == ["e1", "e1", "e1"]  # two to us, one to the other
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.redelivered"))
    assert event is not None
    assert event.actor.startswith("user:")
    assert (event.target_type, event.target_id) == ("webhook", str(sub.id))
    assert event.data == {
        "delivery_id": first.id,
        "event_id": "e1",
        "event_type": "access.approved",
        "previous_status": "failed",
    }
    # A delivered one may be sent again too.
    assert client.post(url, headers=admin_headers).status_code == 202

    for bad, code in (
        (f"/v1/webhooks/{sub.id}/deliveries/{elsewhere.id}/redeliver", "delivery_not_found"),
        (f"/v1/webhooks/{sub.id}/deliveries/99999/redeliver", "delivery_not_found"),
        (f"/v1/webhooks/99999/deliveries/{first.id}/redeliver", "webhook_not_found"),
    ):
        refused = client.post(bad, headers=admin_headers)
        assert (refused.status_code, refused.json()["code"]) == (404, code)
    _, researcher_key = make_user(db, clock)
    db.commit()
    other_url = f"/v1/webhooks/{other.id}/deliveries/{elsewhere.id}/redeliver"
    assert (
        client.post(other_url, headers={"Authorization": f"Bearer {researcher_key}"}).status_code
        == 403
    )
    assert client.delete(f"/v1/webhooks/{other.id}", headers=admin_headers).status_code == 204
    gone = client.post(other_url, headers=admin_headers)
    assert (gone.status_code, gone.json()["code"]) == (409, "webhook_deleted")
    assert (
        db.scalar(select(WebhookDelivery.status).where(WebhookDelivery.id == elsewhere.id))
        == "delivered"
    )


def test_a_lease_keeps_others_off_until_it_runs_out_and_a_stale_result_loses(
    db: Session, clock: FixedClock, hook_settings: Settings
) -> None:
    make_subscription(db, clock.now(), events=["*"])
    enqueue_event(db, event_type="release.published", data={}, now=clock.now())
    now = clock.now()
    (crashed,) = claim_due_deliveries(db, now=now, lease_seconds=60, limit=10)
    assert (
        claim_due_deliveries(db, now=now + timedelta(seconds=59), lease_seconds=60, limit=10) == []
    )
    # The first replica died holding it; once the lease runs out another takes over.
    later = now + timedelta(seconds=61)
    (taken,) = claim_due_deliveries(db, now=later, lease_seconds=60, limit=10)
    assert taken.event_id == crashed.event_id
    assert taken.lease != crashed.lease
    rng = random.Random(1)
    ok = AttemptResult(200, None, 5)
    assert record_attempt(db, taken, ok, now=later, settings=hook_settings, rng=rng) == "delivered"
    # The first replica comes back from the dead with a failure: it changes nothing.
    late = AttemptResult(None, "ReadTimeout: timed out", 30000)
    assert record_attempt(db, crashed, late, now=later, settings=hook_settings, rng=rng) == (
        "lost_lease"
    )
    d = db.scalar(select(WebhookDelivery).execution_options(populate_existing=True))
    assert d is not None
    assert (d.status, d.attempts) == ("delivered", 1)
    # Both attempts are on record.
    assert len(db.scalars(select(WebhookAttempt)).all()) == 2


def test_addresses_are_checked_again_right_before_sending(
    db: Session,
    clock: FixedClock,
    session_factory: sessionmaker[Session],
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    """A subscription whose host now resolves somewhere forbidden (DNS rebinding, or the
    operator turned private addresses off) is not sent to."""
    make_subscription(db, clock.now(), url=receiver.url, events=["*"])
    enqueue_event(db, event_type="grant.revoked", data={}, now=clock.now())
    db.commit()
    strict = hook_settings.model_copy(update={"webhook_allow_private": False})
    assert run_once(worker(session_factory, clock, strict)) == 1
    assert receiver.snapshot() == []
    attempt = db.scalar(select(WebhookAttempt))
    assert attempt is not None
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("refused: 127.0.0.1 resolves to a loopback")


def test_redirects_are_not_followed_and_network_errors_are_recorded(
    db: Session,
    clock: FixedClock,
    session_factory: sessionmaker[Session],
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    receiver.responder = lambda _req, _earlier: 307
    make_subscription(db, clock.now(), url=receiver.url, events=["*"])
    # Nothing listens on port 9 (discard) on the test machine.
    make_subscription(db, clock.now(), url="http://127.0.0.1:9/hook?key=receiver-secret")
    enqueue_event(db, event_type="embargo.lifted", data={}, now=clock.now())
    db.commit()
    assert run_once(worker(session_factory, clock, hook_settings)) == 2
    assert [r.status for r in receiver.snapshot()] == [307]
    errors = {a.status_code: a.error for a in db.scalars(select(WebhookAttempt)).all()}
    assert errors[307] is None
    refused = errors[None]
    assert refused is not None
    assert refused.startswith("ConnectError")
    assert "receiver-secret" not in refused
    statuses = db.scalars(select(WebhookDelivery.status)).all()
    assert statuses == ["pending", "pending"]


@pytest.mark.parametrize("attempts", range(1, 25))
def test_backoff_doubles_up_to_the_cap_with_jitter(attempts: int) -> None:
    rng = random.Random(attempts)
    raw = min(600.0, 10.0 * 2 ** (attempts - 1))
    for _ in range(20):
        delay = backoff_seconds(attempts, base=10.0, cap=600.0, rng=rng)
        assert raw / 2 <= delay <= raw
