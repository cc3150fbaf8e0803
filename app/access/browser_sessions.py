"""Browser sessions of the web console: an API key (or an OpenID Connect sign-in) exchanged
for a random cookie value whose SHA-256 is a database row.

Rows rather than signed cookies because a session must end *everywhere at once*: signing
out, an admin disabling the user, or an operator deleting rows takes effect on the next
request to any replica. Each request checks the row and the user: an ended, expired (idle
or absolute lifetime) or disabled-user session is refused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import audit
from app.context import RequestContext
from app.models import BrowserSession, User

# Write last_seen_at at most this often: every page view must not become a row update, and
# the idle timeout is counted in minutes anyway.
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    lifetime: timedelta


@dataclass(frozen=True)
class SessionUser:
    id: int
    email: str
    name: str
    role: str
    partner_id: int | None = None  # the partner organisation they work for (partner pages)


@dataclass(frozen=True)
class SignedIn:
    """A live session and its user, as loaded for this request: plain values, so pages and
    error pages can still show them after the request's transaction ended."""

    session_id: int
    csrf_token: str
    user: SessionUser


def hash_session_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(
    session: Session,
    *,
    user: User,
    method: str,
    policy: SessionPolicy,
    now: datetime,
    user_agent: str = "",
    ctx: RequestContext | None = None,
) -> tuple[BrowserSession, str]:
    """Open a session for ``user``; returns the row and the cookie value (never stored)."""
    token = secrets.token_urlsafe(32)
    row = BrowserSession(
        token_hash=hash_session_token(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.lifetime,
        user_agent="".join(c for c in user_agent if " " <= c <= "~")[:200],
        client_addr=ctx.client_addr if ctx else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        now=now,
        actor=f"user:{user.id}",
        action="session.started",
        target_type="user",
        target_id=user.id,
        data={"method": method, "session": row.id},
        ctx=ctx,
    )
    return row, token


def signed_in(
    session: Session, token: str, *, policy: SessionPolicy, now: datetime
) -> SignedIn | None:
    """The live session behind the cookie value ``token``, or ``None``: unknown, ended,
    past its absolute lifetime or idle too long, or its user disabled."""
    if not token or len(token) > 128:
        return None
    found = session.execute(
        select(BrowserSession, User)
        .join(User, User.id == BrowserSession.user_id)
        .where(BrowserSession.token_hash == hash_session_token(token))
    ).one_or_none()
    if found is None:
        return None
    row, user = found[0], found[1]
    if row.ended_at is not None or user.disabled_at is not None:
        return None
    if row.expires_at <= now or row.last_seen_at + policy.idle <= now:
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return SignedIn(
        row.id,
        row.csrf_token,
        SessionUser(user.id, user.email, user.name, user.role, user.partner_id),
    )


def end_session(
    session: Session, session_id: int, *, now: datetime, ctx: RequestContext | None = None
) -> None:
    """Sign out: the row is kept (ended) for the audit trail."""
    row = session.get(BrowserSession, session_id, with_for_update=True)
    if row is None or row.ended_at is not None:
        return
    row.ended_at = now
    session.flush()
    audit.record(
        session,
        now=now,
        actor=f"user:{row.user_id}",
        action="session.ended",
        target_type="user",
        target_id=row.user_id,
        data={"session": row.id, "reason": "signed out"},
        ctx=ctx,
    )


def end_user_sessions(session: Session, *, user_id: int, now: datetime) -> int:
    """End every open session of a user (disabled, offboarded); how many were open."""
    result = session.execute(
        update(BrowserSession)
        .where(BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
