from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.access.partners import (
    generate_client_id,
    generate_secret,
    hash_secret,
    looks_like_secret,
    verify_partner_secret,
)
from app.clock import FixedClock
from app.models import Partner


def make_partner(db: Session, clock: FixedClock, secret: str) -> Partner:
    partner = Partner(
        name=f"p-{generate_client_id()}",
        client_id=generate_client_id(),
        secret_hash=hash_secret(secret),
        created_at=clock.now(),
    )
    db.add(partner)
    db.flush()
    return partner


def test_secret_shape_and_hash_is_not_the_secret() -> None:
    secret = generate_secret()
    assert secret.startswith("wgp_")
    assert looks_like_secret(secret)
    assert hash_secret(secret) != secret
    assert len(hash_secret(secret)) == 64
    assert generate_secret() != secret


def test_verify_accepts_only_the_right_secret(db: Session, clock: FixedClock) -> None:
    secret = generate_secret()
    partner = make_partner(db, clock, secret)
    assert verify_partner_secret(db, partner.client_id, secret, clock.now()) is partner
    assert verify_partner_secret(db, partner.client_id, generate_secret(), clock.now()) is None
    assert verify_partner_secret(db, "wgc_nope", secret, clock.now()) is None
    assert verify_partner_secret(db, "x" * 500, secret, clock.now()) is None


def test_verify_refuses_disabled_and_expired(db: Session, clock: FixedClock) -> None:
    secret = generate_secret()
    partner = make_partner(db, clock, secret)
    partner.secret_expires_at = clock.now() + timedelta(seconds=10)
    assert verify_partner_secret(db, partner.client_id, secret, clock.now()) is partner
    assert verify_partner_secret(db, partner.client_id, secret, partner.secret_expires_at) is None
    partner.secret_expires_at = None
    partner.disabled_at = clock.now()
    assert verify_partner_secret(db, partner.client_id, secret, clock.now()) is None
