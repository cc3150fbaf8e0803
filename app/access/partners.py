"""Partner client credentials: generating, hashing and verifying ``client_secret``\\s.

Secrets are ``wgp_`` + 256 random bits (the prefix lets secret scanners spot a leaked one),
shown once and stored as SHA-256: with that much entropy there is nothing to brute-force, so
a slow password hash would only cost CPU on every ``/v1/oauth/token`` call. Comparison is
constant-time. A rotated secret stops working at once (there is one hash per partner).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Partner

SECRET_PREFIX = "wgp_"  # noqa: S105 - a public prefix for secret scanners, not a secret
CLIENT_ID_PREFIX = "wgc_"
_SECRET_BODY_LEN = 43  # token_urlsafe(32)
# Compared against when the client id is unknown, so that case costs the same as a wrong
# secret (no timing oracle for which client ids exist).
_DUMMY_HASH = hashlib.sha256(b"weightgate-no-such-partner").hexdigest()


def generate_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(12)


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_secret(value: str) -> bool:
    return value.startswith(SECRET_PREFIX) and len(value) == len(SECRET_PREFIX) + _SECRET_BODY_LEN


def verify_partner_secret(
    session: Session, client_id: str, client_secret: str, now: datetime
) -> Partner | None:
    """The active partner whose credentials these are, or ``None`` (unknown client, wrong or
    expired secret, disabled partner). Never says which: the caller answers ``invalid_client``."""
    partner = None
    if len(client_id) <= 64:
        partner = session.scalar(select(Partner).where(Partner.client_id == client_id))
    expected = partner.secret_hash if partner is not None else _DUMMY_HASH
    matches = hmac.compare_digest(expected, hash_secret(client_secret))
    if partner is None or not matches or not looks_like_secret(client_secret):
        return None
    if partner.disabled_at is not None:
        return None
    if partner.secret_expires_at is not None and partner.secret_expires_at <= now:
        return None
    return partner
