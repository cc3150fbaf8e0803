"""Creating users (CLI bootstrap, open registration, admins)."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.access.apikeys import create_api_key
from app.context import RequestContext
from app.errors import Conflict, Forbidden, Unprocessable
from app.models import User
from app.tokens import quotas

ROLES = ("admin", "researcher")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


def normalise_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL.match(email) or len(email) > 320:
        raise Unprocessable(f"{email[:80]!r} is not an email address", code="invalid_email")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def create_user_with_key(
    session: Session,
    *,
    email: str,
    role: str,
    name: str,
    actor: str,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[User, str]:
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    email = normalise_email(email)
    taken = session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
    if taken is not None:
        raise Conflict(f"a user with email {email} already exists", code="user_exists")
    user = User(email=email, name=name.strip()[:200], role=role, created_at=now)
    session.add(user)
    session.flush()
    key_row, key = create_api_key(session, user=user, now=now, name="initial")
    audit.record(
        session,
        now=now,
        actor=actor,
        action="user.created",
        target_type="user",
        target_id=user.id,
        after={"email": email, "role": role},
        ctx=ctx,
    )
    audit.record(
        session,
        now=now,
        actor=actor,
        action="api_key.created",
        target_type="api_key",
        target_id=key_row.id,
        after={"user": user.id, "prefix": key_row.prefix},
        ctx=ctx,
    )
    return user, key


def register(
    session: Session,
    *,
    email: str,
    name: str,
    open_registration: bool,
    quota: quotas.Quota,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[User, str]:
    """Self-service sign-up as a researcher, when the operator turned it on.

    Each attempt counts against ``quota`` for the client address, and is committed before
    the sign-up is tried: a refused attempt (an email already taken, an invalid one) counts
    too, so the limit also bounds probing which emails have accounts."""
    if not open_registration:
        raise Forbidden(
            "open registration is turned off on this server; ask an administrator for an account",
            code="registration_closed",
        )
    address = (ctx.client_addr if ctx else None) or "unknown"
    quotas.charge(session, quota, key=address, amount=1, now=now)
    session.commit()
    try:
        with session.begin_nested():
            return create_user_with_key(
                session,
                email=email,
                role="researcher",
                name=name,
                actor="anonymous",
                now=now,
                ctx=ctx,
            )
    except IntegrityError as e:  # lost a race with a concurrent sign-up for the same email
        raise Conflict("a user with this email already exists", code="user_exists") from e
