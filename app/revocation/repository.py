"""Queries of token revocation: the rows it reads and the one-token update."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import IssuedToken, Partner, User


def token(session: Session, jti: str) -> IssuedToken | None:
    return session.get(IssuedToken, jti)


def user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def partner(session: Session, partner_id: int) -> Partner | None:
    return session.get(Partner, partner_id)


def revoke(session: Session, jti: str, *, now: datetime, reason: str) -> bool:
    """Revoke one live token; ``False`` if it was already revoked."""
    result = session.execute(
        update(IssuedToken)
        .where(IssuedToken.jti == jti, IssuedToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
