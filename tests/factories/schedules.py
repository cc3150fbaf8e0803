"""Components with schedules and webhook subscriptions, written straight into a session.

Faster than the HTTP API for tests that need many due stages (the scheduler's own tests);
the rows are exactly what the catalogue service writes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.models import Component, Model, Release, Stage, WebhookSubscription


def make_release(
    db: Session, now: datetime, *, model: str | None = None, published: bool = True
) -> tuple[Model, Release]:
    namespace, name = (model or f"acme/m-{uuid.uuid4().hex[:8]}").split("/")
    m = Model(
        namespace=namespace,
        name=name,
        display_name=name,
        license="ok",
        license_sha256=hashlib.sha256(b"ok").hexdigest(),
        request_fields=[],
        created_at=now,
        updated_at=now,
    )
    db.add(m)
    db.flush()
    rel = Release(
        model_id=m.id,
        version="v1",
        status="published" if published else "draft",
        revision=uuid.uuid4().hex[:40].ljust(40, "0") if published else None,
        created_at=now,
        published_at=now if published else None,
    )
    db.add(rel)
    db.flush()
    return m, rel


def make_component(
    db: Session,
    now: datetime,
    *,
    release: Release,
    name: str | None = None,
    stages: Sequence[tuple[str, datetime]] = (),
    held_at: datetime | None = None,
    restricted_tier: str | None = None,
) -> tuple[Component, list[Stage]]:
    comp = Component(
        release_id=release.id,
        name=name or f"c{uuid.uuid4().hex[:8]}",
        held_at=held_at,
        hold_reason="test" if held_at else None,
        restricted_tier=restricted_tier,
        restricted_at=now if restricted_tier else None,
        restrict_reason="test" if restricted_tier else None,
        created_at=now,
    )
    db.add(comp)
    db.flush()
    rows = [Stage(component_id=comp.id, tier=t, at=at, created_at=now) for t, at in stages]
    db.add_all(rows)
    db.flush()
    return comp, rows


def make_subscription(
    db: Session,
    now: datetime,
    *,
    url: str = "https://hooks.example.org/wg",
    events: Sequence[str] = ("embargo.lifted",),
    secret: str = "s" * 32,
) -> WebhookSubscription:
    """Written directly: no URL check (tests that exercise the check use the API)."""
    sub = WebhookSubscription(url=url, events=list(events), secret=secret, created_at=now)
    db.add(sub)
    db.flush()
    return sub
