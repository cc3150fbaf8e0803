"""Enqueueing events for webhook subscribers: one outbox row per matching subscription,
written in the caller's transaction so the event exists iff the change it reports does."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import WebhookDelivery, WebhookSubscription

EVENT_TYPES = frozenset(
    {
        "embargo.lifted",
        "embargo.upcoming",
        "embargo.held",
        "embargo.resumed",
        "embargo.rescheduled",
        "embargo.restricted",
        "access.requested",
        "access.approved",
        "access.denied",
        "grant.revoked",
        "token.revoked",
        "release.published",
        "credentials.expiring",
    }
)


def enqueue_event(
    session: Session,
    *,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    event_id: str | None = None,
) -> int:
    """Write one pending delivery per active subscription to ``event_type``; returns how many.

    ``event_id`` is the idempotency id receivers deduplicate on; pass a deterministic one
    (e.g. derived from a transition id) when the same event could be produced twice.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type}")
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    subs = session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.disabled_at.is_(None))
    ).all()
    n = 0
    for sub in subs:
        if event_type not in sub.events and "*" not in sub.events:
            continue
        payload = {"id": event_id, "type": event_type, "created_at": now.isoformat(), "data": data}
        session.add(
            WebhookDelivery(
                subscription_id=sub.id,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        n += 1
    if n:
        session.flush()
    return n
