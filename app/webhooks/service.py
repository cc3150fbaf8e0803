"""Webhook subscriptions: created, listed and deleted by admins, their deliveries listed and
sent again on request; every change audited."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.orm import Session

from app import audit
from app.context import RequestContext
from app.errors import Conflict, NotFound, Unprocessable
from app.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.policy.principals import Principal
from app.settings import Settings
from app.webhooks import repository as repo
from app.webhooks.outbox import EVENT_TYPES
from app.webhooks.schemas import AttemptOut, DeliveryOut, WebhookCreate, WebhookOut
from app.webhooks.targets import TargetRefused, check_target

ALL_EVENTS = "*"


def redacted_url(url: str) -> str:
    """The URL without its query string, for the audit log (receivers sometimes put their
    own access token there)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _check_events(events: list[str]) -> list[str]:
    unique = sorted(set(events))
    if ALL_EVENTS in unique:
        if len(unique) > 1:
            raise Unprocessable("'*' already means every event; list nothing else with it")
        return unique
    unknown = [e for e in unique if e not in EVENT_TYPES]
    if unknown:
        raise Unprocessable(
            f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}",
            code="unknown_event_type",
        )
    return unique


def create_subscription(
    session: Session,
    *,
    body: WebhookCreate,
    settings: Settings,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[WebhookSubscription, str]:
    """Returns the subscription and its secret (the only time the secret leaves us)."""
    events = _check_events(body.events)
    try:
        check_target(body.url, settings)
    except TargetRefused as e:
        raise Unprocessable(f"url refused: {e}", code="webhook_url_refused") from e
    secret = body.secret or "whsec_" + secrets.token_urlsafe(32)
    sub = WebhookSubscription(
        url=body.url,
        events=events,
        secret=secret,
        description=body.description,
        include_report_text=body.include_report_text,
        created_by=actor.user_id,
        created_at=now,
    )
    session.add(sub)
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="webhook.created",
        target_type="webhook",
        target_id=sub.id,
        after={
            "url": redacted_url(sub.url),
            "events": events,
            "include_report_text": sub.include_report_text,
        },
        ctx=ctx,
    )
    return sub, secret


def require_subscription(session: Session, sub_id: int) -> WebhookSubscription:
    sub = repo.subscription(session, sub_id)
    if sub is None:
        raise NotFound(f"webhook {sub_id} not found", code="webhook_not_found")
    return sub


def delete_subscription(
    session: Session,
    *,
    sub_id: int,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> None:
    """Stop the subscription; keep it and its deliveries for the record. Pending deliveries
    are given up (a deleted endpoint must not keep receiving)."""
    sub = require_subscription(session, sub_id)
    if sub.disabled_at is not None:
        raise NotFound(f"webhook {sub_id} not found", code="webhook_not_found")
    repo.disable(session, sub, now=now)
    abandoned = repo.abandon_pending(session, sub.id, reason="subscription deleted")
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="webhook.deleted",
        target_type="webhook",
        target_id=sub.id,
        before={"url": redacted_url(sub.url), "events": sub.events},
        data={"abandoned_deliveries": abandoned},
        ctx=ctx,
    )


def subscription_out(sub: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=sub.id,
        url=sub.url,
        events=sub.events,
        description=sub.description,
        include_report_text=sub.include_report_text,
        created_at=sub.created_at,
        disabled_at=sub.disabled_at,
    )


def subscriptions_page(
    session: Session, *, after: int | None, limit: int, include_deleted: bool = False
) -> list[WebhookOut]:
    """Subscriptions in id order (keyset after ``after``), deleted ones only if asked."""
    rows = repo.subscriptions_page(
        session, after=after, limit=limit, include_disabled=include_deleted
    )
    return [subscription_out(s) for s in rows]


def deliveries_page(
    session: Session, sub_id: int, *, before_id: int | None, limit: int, status: str | None = None
) -> list[DeliveryOut]:
    """A subscription's deliveries, newest first, each with its attempts: two statements
    whatever the page holds."""
    rows = repo.deliveries_page(session, sub_id, before_id=before_id, limit=limit, status=status)
    attempts = repo.attempts_for(session, [d.id for d in rows])
    return [delivery_out(d, attempts[d.id]) for d in rows]


def delivery_out(d: WebhookDelivery, attempts: Sequence[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempt_count=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        payload=d.payload,
        attempts=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


def redeliver(
    session: Session,
    *,
    sub_id: int,
    delivery_id: int,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> DeliveryOut:
    """Send a finished delivery again: it goes back to the outbox, due now, and the delivery
    loop sends it as any other (signed afresh, same payload and idempotency id, so a receiver
    that already handled it can tell; its earlier attempts stay listed). Within the event's
    retry horizon a failure is retried as usual; after it, the one attempt is all.

    404 for an unknown delivery (or one of another subscription); 409 while it is pending
    (queued or being sent: sending it twice at once helps nobody) and for a deleted
    subscription (the loop sends nothing to it)."""
    sub = require_subscription(session, sub_id)
    found = repo.delivery(session, sub.id, delivery_id)
    if found is None:
        raise NotFound(f"webhook {sub_id} has no delivery {delivery_id}", code="delivery_not_found")
    if sub.disabled_at is not None:
        raise Conflict(
            f"webhook {sub_id} is deleted: nothing is sent to it any more",
            code="webhook_deleted",
        )
    previous = found.status
    if previous == "pending" or not repo.requeue(session, found.id, now=now):
        raise Conflict(
            f"delivery {delivery_id} is still pending (queued or being sent); "
            "redeliver it once it has been delivered or has failed",
            code="delivery_in_flight",
        )
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="webhook.redelivered",
        target_type="webhook",
        target_id=sub.id,
        data={
            "delivery_id": found.id,
            "event_id": found.event_id,
            "event_type": found.event_type,
            "previous_status": previous,
        },
        ctx=ctx,
    )
    session.refresh(found)
    return delivery_out(found, repo.attempts_for(session, [found.id])[found.id])
