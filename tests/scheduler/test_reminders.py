"""embargo.upcoming before a lift, credentials.expiring before a secret or key runs out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.apikeys import create_api_key
from app.clock import FixedClock
from app.models import Partner, WebhookDelivery
from app.schedule.reminders import remind_expiring_credentials, remind_upcoming_lifts
from tests.factories.principals import make_user
from tests.factories.schedules import make_component, make_release, make_subscription

DAY = timedelta(days=1)


def sent(db: Session, event_type: str) -> list[WebhookDelivery]:
    return list(
        db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_type == event_type)
            .order_by(WebhookDelivery.id)
        )
    )


def test_upcoming_lift_is_announced_once_inside_the_window(db: Session, clock: FixedClock) -> None:
    now = clock.now()
    make_subscription(db, now, events=["embargo.upcoming"])
    _, rel = make_release(db, now, model="acme/atlas-7b")
    _, (soon, later) = make_component(
        db,
        now,
        release=rel,
        name="weights",
        stages=[("partner", now + timedelta(hours=23)), ("open", now + timedelta(hours=30))],
    )
    assert remind_upcoming_lifts(db, now=now, before=DAY) == 1
    (d,) = sent(db, "embargo.upcoming")
    assert d.payload["data"] == {
        "model": "acme/atlas-7b",
        "version": "v1",
        "component": "weights",
        "tier": "partner",
        "at": soon.at.isoformat(),
    }
    assert remind_upcoming_lifts(db, now=now + timedelta(hours=1), before=DAY) == 0

    # Six hours later the "open" stage enters the window.
    clock.advance(hours=6, minutes=1)
    assert remind_upcoming_lifts(db, now=clock.now(), before=DAY) == 1
    assert [x.payload["data"]["tier"] for x in sent(db, "embargo.upcoming")] == ["partner", "open"]
    db.refresh(later)
    assert later.reminded_at == clock.now()


def test_no_reminder_for_held_draft_past_or_restricted_stages(
    db: Session, clock: FixedClock
) -> None:
    now = clock.now()
    make_subscription(db, now, events=["*"])
    _, rel = make_release(db, now)
    _, draft = make_release(db, now, published=False)
    make_component(db, now, release=rel, stages=[("open", now + DAY / 2)], held_at=now)
    make_component(db, now, release=draft, stages=[("open", now + DAY / 2)])
    make_component(db, now, release=rel, stages=[("open", now - timedelta(seconds=1))])
    make_component(
        db, now, release=rel, stages=[("open", now + DAY / 2)], restricted_tier="partner"
    )
    assert remind_upcoming_lifts(db, now=now, before=DAY) == 0
    assert sent(db, "embargo.upcoming") == []


def test_expiring_partner_secret_and_api_key_are_announced_once(
    db: Session, clock: FixedClock
) -> None:
    now = clock.now()
    make_subscription(db, now, events=["credentials.expiring"])
    partner = Partner(
        name="Acme Partner",
        client_id="cid_expiring",
        secret_hash="0" * 64,
        secret_expires_at=now + 3 * DAY,
        created_at=now,
    )
    far = Partner(
        name="Far",
        client_id="cid_far",
        secret_hash="1" * 64,
        secret_expires_at=now + 30 * DAY,
        created_at=now,
    )
    db.add_all([partner, far])
    user, _ = make_user(db, clock, email="keys@example.org")
    key, clear = create_api_key(db, user=user, now=now, name="ci", expires_at=now + DAY)
    revoked, _ = create_api_key(db, user=user, now=now, name="old", expires_at=now + DAY)
    revoked.revoked_at = now
    create_api_key(db, user=user, now=now, name="gone", expires_at=now - DAY)  # already expired
    db.flush()

    assert remind_expiring_credentials(db, now=now, before=7 * DAY) == 2
    assert remind_expiring_credentials(db, now=now + DAY / 2, before=7 * DAY) == 0
    by_kind = {
        d.payload["data"]["kind"]: d.payload["data"] for d in sent(db, "credentials.expiring")
    }
    assert by_kind["partner_secret"] == {
        "kind": "partner_secret",
        "partner_id": partner.id,
        "partner": "Acme Partner",
        "client_id": "cid_expiring",
        "expires_at": (now + 3 * DAY).isoformat(),
    }
    assert by_kind["api_key"] == {
        "kind": "api_key",
        "key_id": key.id,
        "name": "ci",
        "prefix": key.prefix,
        "user_id": user.id,
        "user": "keys@example.org",
        "expires_at": (now + DAY).isoformat(),
    }
    # Only the public prefix of the key travels, never the key itself.
    assert clear not in str(by_kind["api_key"])
    assert len(key.prefix) < len(clear)
