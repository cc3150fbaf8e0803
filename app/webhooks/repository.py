"""Every webhooks query that is not part of the outbox's claim protocol."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


def subscription(session: Session, sub_id: int) -> WebhookSubscription | None:
    return session.get(WebhookSubscription, sub_id)


def subscriptions_page(
    session: Session, *, after: int | None, limit: int, include_disabled: bool
) -> Sequence[WebhookSubscription]:
    q = select(WebhookSubscription).order_by(WebhookSubscription.id).limit(limit)
    if after is not None:
        q = q.where(WebhookSubscription.id > after)
    if not include_disabled:
        q = q.where(WebhookSubscription.disabled_at.is_(None))
    return session.scalars(q).all()


def deliveries_page(
    session: Session, sub_id: int, *, before_id: int | None, limit: int, status: str | None
) -> Sequence[WebhookDelivery]:
    """Newest first; ``before_id`` is the keyset cursor."""
    q = (
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        q = q.where(WebhookDelivery.id < before_id)
    if status is not None:
        q = q.where(WebhookDelivery.status == status)
    return session.scalars(q).all()


def attempts_for(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    out: dict[int, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    if delivery_ids:
        rows = session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.id)
        ).all()
        for attempt in rows:
            out[attempt.delivery_id].append(attempt)
    return out


def delivery(session: Session, sub_id: int, delivery_id: int) -> WebhookDelivery | None:
    return session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == sub_id
        )
    )


def requeue(session: Session, delivery_id: int, *, now: datetime) -> bool:
    """Put a finished (delivered or failed) delivery back in the outbox, due now. A
    compare-and-set on the status: ``False`` if it is pending (queued or being sent)."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status != "pending")
        .values(
            status="pending",
            next_attempt_at=now,
            locked_until=None,
            last_error=None,
            delivered_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def abandon_pending(session: Session, sub_id: int, *, reason: str) -> int:
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub_id, WebhookDelivery.status == "pending")
        .values(status="failed", last_error=reason, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def disable(session: Session, sub: WebhookSubscription, *, now: datetime) -> None:
    sub.disabled_at = now
    session.flush()
