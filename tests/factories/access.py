"""Access-domain test data: researchers with headers, partners, issued-token rows, webhook
subscriptions to watch what gets enqueued."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, IssuedToken, User, WebhookDelivery, WebhookSubscription
from tests.factories.catalogue import check
from tests.factories.principals import make_user


def researcher(
    db: Session, clock: FixedClock, email: str | None = None
) -> tuple[User, dict[str, str]]:
    user, key = make_user(db, clock, role="researcher", email=email)
    return user, {"Authorization": f"Bearer {key}"}


def create_partner(
    client: TestClient, admin_headers: dict[str, str], *, name: str | None = None, models: list[Any]
) -> dict[str, Any]:
    body = {"name": name or f"Partner {uuid.uuid4().hex[:6]}", "models": models}
    return check(client.post("/v1/partners", json=body, headers=admin_headers), 201)  # type: ignore[no-any-return]


def issued_token(db: Session, clock: FixedClock, **fields: Any) -> IssuedToken:
    """A live token row as the tokens domain would write it (for revocation tests)."""
    row = IssuedToken(
        jti=uuid.uuid4().hex,
        kind=fields.pop("kind", "download"),
        kid="test",
        subject=fields.pop("subject", "user:0"),
        scope=fields.pop("scope", {}),
        issued_at=clock.now(),
        expires_at=clock.now() + timedelta(minutes=15),
        uses=0,
        **fields,
    )
    db.add(row)
    db.flush()
    return row


def subscribe(db: Session, clock: FixedClock, events: list[str]) -> WebhookSubscription:
    sub = WebhookSubscription(
        url="https://hooks.example.org/wg",
        events=events,
        secret="s3cret-for-tests",
        created_at=clock.now(),
    )
    db.add(sub)
    db.commit()
    return sub


def enqueued(db: Session, event_type: str) -> list[dict[str, Any]]:
    """Payloads of the outbox rows of one event type, oldest first."""
    db.expire_all()
    return [
        d.payload
        for d in db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_type == event_type)
            .order_by(WebhookDelivery.id)
        )
    ]


def audit_events(db: Session, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
    )
