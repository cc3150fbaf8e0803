"""API keys verified once per process, then answered from memory (app/freshness.py).

Every Hugging Face request, manifest and token issue presents an API key; reading the key
and its user on each of them was a statement (and an ORM load) per request. Here a key
presented before is found by the SHA-256 the database stores it under (the key itself is
never kept), and what the database said is reused while the cache epoch holds: a revoked
or re-dated key, a disabled user or a changed role moves the epoch (in this process at
commit, on other replicas within half a second), and the next request reads the database
again. The key's expiry is compared with the request's clock every time. Unknown and
refused keys are not cached: they cost the statement they cost before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.access.apikeys import hash_key, looks_like_api_key
from app.freshness import EpochCache, Freshness
from app.models import ApiKey, User
from app.policy.principals import Principal

# Last use is written at most this often per key, as before the cache: a download burst
# must not turn every request into a row update.
STAMP_EVERY = 60.0

_KEY = select(
    ApiKey.id,
    ApiKey.expires_at,
    ApiKey.revoked_at,
    ApiKey.last_used_at,
    User.id,
    User.role,
    User.email,
    User.disabled_at,
).join(User, User.id == ApiKey.user_id)


@dataclass(frozen=True)
class KnownKey:
    key_id: int
    expires_at: datetime | None
    last_used_at: datetime | None
    principal: Principal


class ApiKeyCache:
    """What :class:`app.auth.dependencies.Authenticators` asks for an API key."""

    def __init__(self, fresh: Freshness, max_entries: int = 10_000) -> None:
        self._cache: EpochCache[str, KnownKey] = EpochCache(fresh, max_entries)

    def __call__(self, session: Session, key: str, *, now: datetime) -> Principal | None:
        """The principal ``key`` stands for, or ``None`` if unknown, revoked or expired;
        records its last use (at most once a minute)."""
        if not looks_like_api_key(key):
            return None
        digest = hash_key(key)
        epoch = self._cache.fresh.epoch()
        known = self._cache.get(digest, epoch)
        if known is None:
            known = _load(session, digest)
            if known is None:
                return None
            self._cache.put(digest, known, epoch)
        if known.expires_at is not None and known.expires_at <= now:
            return None
        if known.last_used_at is None or (now - known.last_used_at).total_seconds() > STAMP_EVERY:
            session.execute(
                update(ApiKey).where(ApiKey.id == known.key_id).values(last_used_at=now)
            )
            self._cache.put(digest, replace(known, last_used_at=now), epoch)
        return known.principal


def _load(session: Session, digest: str) -> KnownKey | None:
    row = session.execute(_KEY.where(ApiKey.key_hash == digest)).one_or_none()
    if row is None:
        return None
    key_id, expires_at, revoked_at, last_used_at, user_id, role, email, disabled_at = row
    if revoked_at is not None or disabled_at is not None:
        return None
    principal = Principal(kind="user", id=user_id, role=role, name=email)
    return KnownKey(key_id, expires_at, last_used_at, principal)
