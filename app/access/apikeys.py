"""API keys: ``wg_`` + 256 random bits, shown once, stored as SHA-256.

The ``wg_`` prefix lets secret scanners (GitHub's, trufflehog) recognise a leaked key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.access import repository as repo
from app.access.identities import clean_name
from app.context import RequestContext
from app.errors import Conflict, NotFound, Unprocessable
from app.models import ApiKey, User

KEY_PREFIX = "wg_"
_KEY_BODY_LEN = 43  # token_urlsafe(32)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and len(value) == len(KEY_PREFIX) + _KEY_BODY_LEN


def create_api_key(
    session: Session,
    *,
    user: User,
    now: datetime,
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for ``user``; returns the row and the clear key (to show once)."""
    key = generate_key()
    row = ApiKey(
        user_id=user.id,
        name=name,
        prefix=key[:11],
        key_hash=hash_key(key),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, key


def authenticate_api_key(session: Session, key: str, *, now: datetime) -> User | None:
    """The active user owning ``key``, or ``None``. Records last use (coarsely)."""
    if not looks_like_api_key(key):
        return None
    row = session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == hash_key(key))
    ).one_or_none()
    if row is None:
        return None
    api_key, user = row[0], row[1]
    if api_key.revoked_at is not None or user.disabled_at is not None:
        return None
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return None
    # Write last_used_at at most once a minute: a download burst must not turn every
    # request into a row update.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        api_key.last_used_at = now
    return user


MAX_LIVE_KEYS = 100


def key_snapshot(row: ApiKey) -> dict[str, Any]:
    return {
        "user": row.user_id,
        "name": row.name,
        "prefix": row.prefix,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


def issue_key(
    session: Session,
    *,
    user: User,
    name: str,
    expires_at: datetime | None,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[ApiKey, str]:
    """A user's new key (the clear key is returned once, never stored or logged)."""
    if expires_at is not None and expires_at <= now:
        raise Unprocessable("expires_at must be in the future", code="invalid_expiry")
    if repo.count_live_keys(session, user.id, now=now) >= MAX_LIVE_KEYS:
        raise Conflict(
            f"a user may hold at most {MAX_LIVE_KEYS} live API keys; delete unused ones first",
            code="too_many_keys",
        )
    row, key = create_api_key(
        session, user=user, now=now, name=clean_name(name), expires_at=expires_at
    )
    audit.record(
        session,
        now=now,
        actor=f"user:{user.id}",
        action="api_key.created",
        target_type="api_key",
        target_id=row.id,
        after=key_snapshot(row),
        ctx=ctx,
    )
    return row, key


def revoke_key(
    session: Session,
    *,
    user_id: int,
    key_id: int,
    now: datetime,
    actor: str | None = None,
    ctx: RequestContext | None = None,
) -> ApiKey:
    """Revoke one of ``user_id``'s keys (the caller's own, or an admin's choice); another
    user's key is "not found"."""
    row = repo.api_key(session, user_id, key_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(f"no API key {key_id}", code="api_key_not_found")
    _revoke(session, row, actor=actor or f"user:{user_id}", now=now, ctx=ctx)
    return row


def keys_page(session: Session, user_id: int, *, after: int | None, limit: int) -> Sequence[ApiKey]:
    """A user's keys in id order, revoked ones included."""
    return repo.api_keys_page(session, user_id, after=after, limit=limit)


def api_key_by_value(session: Session, key: str) -> ApiKey | None:
    """The row of the key whose clear value is ``key``, whatever its state."""
    if not looks_like_api_key(key):
        return None
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))


def revoke_leaked(
    session: Session, *, key: str, actor: str, now: datetime, ctx: RequestContext | None = None
) -> ApiKey:
    """Revoke the key whose clear value was found where it should not be (a public
    repository, a paste, a secret scanner's report), whoever holds it. Reporting a key that
    is already revoked changes nothing; the key itself is never stored, logged or echoed."""
    row = api_key_by_value(session, key)
    if row is None:
        raise NotFound("no such API key", code="api_key_not_found")
    if row.revoked_at is None:
        _revoke(session, row, actor=actor, now=now, ctx=ctx, reason="reported leaked")
    return row


def _revoke(
    session: Session,
    row: ApiKey,
    *,
    actor: str,
    now: datetime,
    ctx: RequestContext | None,
    reason: str | None = None,
) -> None:
    row.revoked_at = now
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor,
        action="api_key.revoked",
        target_type="api_key",
        target_id=row.id,
        before=key_snapshot(row),
        data={"reason": reason} if reason else None,
        ctx=ctx,
    )


def api_keys_page(
    session: Session, user_id: int, *, after: int | None, limit: int
) -> Sequence[ApiKey]:
    """The user's keys in id order, revoked ones included."""
    return repo.api_keys_page(session, user_id, after=after, limit=limit)
