"""Advance notice: ``embargo.upcoming`` before a lift, ``credentials.expiring`` before a
partner secret or an API key runs out.

Each reminder is sent once, claimed the same way as a lift: a compare-and-set on its
``*_reminded_at`` column inside the caller's transaction, with ``SKIP LOCKED`` on
PostgreSQL so replicas split the work. The event ids are derived from the row and the date
being announced, so a retried transaction re-sends the same id. Whoever moves the date
(reschedule, secret rotation) clears the ``*_reminded_at`` column so the new date is
announced too; a date already past is never "upcoming" (the lift or the expiry itself is
the news then).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from app.models import ApiKey, Component, Model, Partner, Release, Stage, User
from app.schedule.claimer import due_conditions
from app.webhooks.outbox import enqueue_event


def _event_id(kind: str, row_id: int, when: datetime) -> str:
    digest = hashlib.sha256(f"{kind}:{row_id}:{when.isoformat()}".encode()).hexdigest()
    return "evt_" + digest[:32]


def lift_reminder_data(
    stage: Stage, component: Component, release: Release, model: Model
) -> dict[str, Any]:
    """The ``embargo.upcoming`` event's data."""
    return {
        "model": model.repo_id,
        "version": release.version,
        "component": component.name,
        "tier": stage.tier,
        "at": stage.at.isoformat(),
    }


def secret_reminder_data(partner: Partner) -> dict[str, Any]:
    """The ``credentials.expiring`` event's data for a partner's client secret."""
    assert partner.secret_expires_at is not None
    return {
        "kind": "partner_secret",
        "partner_id": partner.id,
        "partner": partner.name,
        "client_id": partner.client_id,
        "expires_at": partner.secret_expires_at.isoformat(),
    }


def key_reminder_data(key: ApiKey, user: User) -> dict[str, Any]:
    """The ``credentials.expiring`` event's data for an API key: the prefix is what
    listings show; never any part of the secret beyond it."""
    assert key.expires_at is not None
    return {
        "kind": "api_key",
        "key_id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "user_id": user.id,
        "user": user.email,
        "expires_at": key.expires_at.isoformat(),
    }


def _claim(session: Session, column: Any, row_id: int, now: datetime) -> bool:
    table = column.class_
    result = session.execute(
        update(table)
        .where(table.id == row_id, column.is_(None))
        .values({column.key: now})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def remind_upcoming_lifts(
    session: Session, *, now: datetime, before: timedelta, limit: int = 100
) -> int:
    """Enqueue ``embargo.upcoming`` for stages that will take effect within ``before``."""
    horizon = now + before
    # Same conditions as a due lift, evaluated at the horizon, minus those already due now.
    rows = session.execute(
        select(Stage.id)
        .join(Component, Component.id == Stage.component_id)
        .join(Release, Release.id == Component.release_id)
        .where(and_(*due_conditions(horizon)), Stage.at > now, Stage.reminded_at.is_(None))
        .where(Component.held_at.is_(None))
        .order_by(Stage.at, Stage.id)
        .limit(limit)
        .with_for_update(of=Stage, skip_locked=True)
    ).all()
    sent = 0
    for (stage_id,) in rows:
        if not _claim(session, Stage.reminded_at, stage_id, now):
            continue
        stage, component, release, model = session.execute(
            select(Stage, Component, Release, Model)
            .join(Component, Component.id == Stage.component_id)
            .join(Release, Release.id == Component.release_id)
            .join(Model, Model.id == Release.model_id)
            .where(Stage.id == stage_id)
        ).one()
        enqueue_event(
            session,
            event_type="embargo.upcoming",
            event_id=_event_id("embargo.upcoming", stage.id, stage.at),
            now=now,
            data=lift_reminder_data(stage, component, release, model),
        )
        sent += 1
    return sent


def remind_expiring_credentials(
    session: Session, *, now: datetime, before: timedelta, limit: int = 100
) -> int:
    """Enqueue ``credentials.expiring`` for partner secrets and API keys that expire within
    ``before`` (and have not expired yet)."""
    horizon = now + before
    sent = 0
    partners = session.execute(
        select(Partner.id)
        .where(
            Partner.secret_expires_at.is_not(None),
            Partner.secret_expires_at > now,
            Partner.secret_expires_at <= horizon,
            Partner.secret_expiry_reminded_at.is_(None),
            Partner.disabled_at.is_(None),
        )
        .order_by(Partner.secret_expires_at, Partner.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for (partner_id,) in partners:
        if not _claim(session, Partner.secret_expiry_reminded_at, partner_id, now):
            continue
        partner = session.get_one(Partner, partner_id)
        assert partner.secret_expires_at is not None
        enqueue_event(
            session,
            event_type="credentials.expiring",
            event_id=_event_id("partner_secret", partner.id, partner.secret_expires_at),
            now=now,
            data=secret_reminder_data(partner),
        )
        sent += 1
    keys = session.execute(
        select(ApiKey.id)
        .join(User, User.id == ApiKey.user_id)
        .where(
            ApiKey.expires_at.is_not(None),
            ApiKey.expires_at > now,
            ApiKey.expires_at <= horizon,
            ApiKey.expiry_reminded_at.is_(None),
            ApiKey.revoked_at.is_(None),
            User.disabled_at.is_(None),
        )
        .order_by(ApiKey.expires_at, ApiKey.id)
        .limit(limit)
        .with_for_update(of=ApiKey, skip_locked=True)
    ).all()
    for (key_id,) in keys:
        if not _claim(session, ApiKey.expiry_reminded_at, key_id, now):
            continue
        key, user = session.execute(
            select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.id == key_id)
        ).one()
        assert key.expires_at is not None
        enqueue_event(
            session,
            event_type="credentials.expiring",
            event_id=_event_id("api_key", key.id, key.expires_at),
            now=now,
            data=key_reminder_data(key, user),
        )
        sent += 1
    return sent
