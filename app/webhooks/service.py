"""Webhook subscriptions: created, listed and deleted by admins; every change audited."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.orm import Session

from app import audit
from app.context import RequestContext
from app.errors import NotFound, Unprocessable
from app.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.policy.principals import Principal
from app.settings import Settings
from app.webhooks import repository as repo
from app.webhooks.outbox import EVENT_TYPES
from app.webhooks.schemas import WebhookCreate
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


def subscriptions_page(
    session: Session, *, after: int | None, limit: int, include_disabled: bool
) -> Sequence[WebhookSubscription]:
    return repo.subscriptions_page(
        session, after=after, limit=limit, include_disabled=include_disabled
    )


def deliveries_page(
    session: Session,
    sub: WebhookSubscription,
    *,
    before_id: int | None,
    limit: int,
    status: str | None,
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], bool]:
    """Up to ``limit`` of the subscription's deliveries, newest first, each with all its
    attempts, and whether there are more."""
    rows = repo.deliveries_page(
        session, sub.id, before_id=before_id, limit=limit + 1, status=status
    )
    shown = rows[:limit]
    attempts = repo.attempts_for(session, [d.id for d in shown])
    return [(d, attempts[d.id]) for d in shown], len(rows) > limit
