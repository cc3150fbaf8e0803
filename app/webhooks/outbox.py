"""Enqueueing events for webhook subscribers: one outbox row per matching subscription,
written in the caller's transaction so the event exists iff the change it reports does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
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
        "safety.report.filed",
        "safety.report.updated",
        "component.held",
    }
)


@dataclass(frozen=True)
class OutboxEvent:
    """An event to announce. ``report_text`` (a safety report's description and evidence)
    is added to ``data`` only for subscriptions that opted in (``include_report_text``)."""

    event_type: str
    data: dict[str, Any]
    event_id: str = field(default_factory=lambda: f"evt_{uuid.uuid4().hex}")
    report_text: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {self.event_type}")


def enqueue_event(
    session: Session,
    *,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    event_id: str | None = None,
    report_text: dict[str, Any] | None = None,
) -> int:
    """Write one pending delivery per active subscription to ``event_type``; returns how many.

    ``event_id`` is the idempotency id receivers deduplicate on; pass a deterministic one
    (e.g. derived from a transition id) when the same event could be produced twice.
    """
    event = (
        OutboxEvent(event_type, data, event_id, report_text)
        if event_id
        else OutboxEvent(event_type, data, report_text=report_text)
    )
    return enqueue_events(session, [event], now=now)


def enqueue_events(session: Session, events: Sequence[OutboxEvent], *, now: datetime) -> int:
    """:func:`enqueue_event` for many events at once: one subscription lookup, one flush."""
    if not events:
        return 0
    subs = session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.disabled_at.is_(None))
        .order_by(WebhookSubscription.id)
    ).all()
    n = 0
    for event in events:
        payload = {
            "id": event.event_id,
            "type": event.event_type,
            "created_at": now.isoformat(),
            "data": event.data,
        }
        with_text = payload
        if event.report_text:
            with_text = {**payload, "data": {**event.data, **event.report_text}}
        for sub in subs:
            if event.event_type not in sub.events and "*" not in sub.events:
                continue
            session.add(
                WebhookDelivery(
                    subscription_id=sub.id,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    payload=with_text if sub.include_report_text else payload,
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
