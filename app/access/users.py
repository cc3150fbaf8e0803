"""Users: creating them (CLI bootstrap, open registration, admins), and an admin's changes
to one (name, role, disabled, the partner organisation they work for)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.access import repository as repo
from app.access.apikeys import create_api_key
from app.access.browser_sessions import end_user_sessions
from app.access.identities import clean_name, normalise_email
from app.access.schemas import UserPatch
from app.context import RequestContext
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.models import Partner, User
from app.quotas import service as quotas
from app.revocation.service import revoke_tokens

ROLES = ("admin", "researcher")


def create_user_with_key(
    session: Session,
    *,
    email: str,
    role: str,
    name: str,
    actor: str,
    now: datetime,
    partner_id: int | None = None,
    ctx: RequestContext | None = None,
) -> tuple[User, str]:
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    email = normalise_email(email)
    taken = session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
    if taken is not None:
        raise Conflict(f"a user with email {email} already exists", code="user_exists")
    if partner_id is not None:
        _require_partner(session, partner_id)
    user = User(
        email=email, name=clean_name(name)[:200], role=role, created_at=now, partner_id=partner_id
    )
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
        after={"email": email, "role": role, "partner_id": partner_id},
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


def users_page(
    session: Session,
    *,
    after: int | None,
    limit: int,
    email: str | None = None,
    role: str | None = None,
    disabled: bool | None = None,
    text: str | None = None,
) -> Sequence[User]:
    """Users in id order (keyset after ``after``): one email exactly (any case), a role,
    disabled or active, or an email or name containing ``text`` (any case)."""
    return repo.users_page(
        session, after=after, limit=limit, email=email, role=role, disabled=disabled, text=text
    )


def require_user(session: Session, user_id: int) -> User:
    user = repo.user(session, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", code="user_not_found")
    return user


def user_snapshot(user: User) -> dict[str, object]:
    return {
        "name": user.name,
        "role": user.role,
        "disabled_at": None if user.disabled_at is None else user.disabled_at.isoformat(),
        "partner_id": user.partner_id,
    }


def _require_partner(session: Session, partner_id: int) -> None:
    if session.get(Partner, partner_id) is None:
        raise Unprocessable(f"no partner {partner_id}", code="unknown_partner")


def update_user(
    session: Session,
    *,
    user_id: int,
    body: UserPatch,
    actor: str,
    now: datetime,
    ctx: RequestContext | None = None,
) -> User:
    """Rename, change the role, disable or re-enable.

    Disabling is how someone is offboarded: every API key of theirs is refused from the next
    request on (authentication checks the user, so the keys need not be revoked one by one,
    and re-enabling brings them back), and their download tokens are revoked. A change that
    would leave no active admin is refused (``409 last_admin``): nobody could undo it."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", code="user_not_found")
    active_admin = user.role == "admin" and user.disabled_at is None
    if active_admin and (body.disabled is True or body.role == "researcher"):
        _keep_an_admin(session, user)
    session.refresh(user, with_for_update=True)
    before = user_snapshot(user)
    if body.name is not None:
        user.name = clean_name(body.name)
    if body.role is not None:
        user.role = body.role
    if "partner_id" in body.model_fields_set and body.partner_id != user.partner_id:
        if body.partner_id is not None:
            _require_partner(session, body.partner_id)
        user.partner_id = body.partner_id
    revoked = sessions_ended = 0
    if body.disabled is True and user.disabled_at is None:
        user.disabled_at = now
        revoked = revoke_tokens(session, now=now, reason="user disabled", user_id=user.id)
        # The console's sessions too: a disabled user's browser is signed out at once (the
        # check of disabled_at on every request already refuses them; this keeps the rows
        # from coming back to life if the user is re-enabled).
        sessions_ended = end_user_sessions(session, user_id=user.id, now=now)
    elif body.disabled is False:
        user.disabled_at = None
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor,
        action="user.updated",
        target_type="user",
        target_id=user.id,
        before=before,
        after=user_snapshot(user),
        data={"tokens_revoked": revoked, "sessions_ended": sessions_ended},
        ctx=ctx,
    )
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    """Refuse to demote or disable ``user`` if no other admin is active. The active admins'
    rows are locked, in id order, until commit: two admins demoting each other at the same
    time are decided one after the other, and the second is refused."""
    admins = session.scalars(
        select(User.id)
        .where(User.role == "admin", User.disabled_at.is_(None))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not any(admin != user.id for admin in admins):
        raise Conflict(
            f"{user.email} is the last active admin: make another admin first",
            code="last_admin",
        )


def user_for_identity(
    session: Session,
    *,
    email: str,
    name: str,
    create: bool,
    now: datetime,
    ctx: RequestContext | None = None,
) -> User:
    """The user an identity provider's verified ``email`` signs in as (matched without case);
    with ``create``, an unknown email becomes a new researcher (no API key: they sign in
    through the provider). A disabled user, or an unknown one without ``create``, is
    refused."""
    email = normalise_email(email)
    user = session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if user is None:
        if not create:
            raise Forbidden(
                f"there is no account for {email}; ask an admin to create one",
                code="no_account",
            )
        user = User(email=email, name=clean_name(name)[:200], role="researcher", created_at=now)
        session.add(user)
        session.flush()
        audit.record(
            session,
            now=now,
            actor="oidc",
            action="user.created",
            target_type="user",
            target_id=user.id,
            after={"email": email, "role": "researcher", "partner_id": None},
            data={"via": "oidc"},
            ctx=ctx,
        )
    if user.disabled_at is not None:
        raise Forbidden(f"the account {email} is disabled", code="user_disabled")
    return user


# --- reads for the routes -----------------------------------------------------------------


def user_by_id(session: Session, user_id: int) -> User | None:
    return repo.user(session, user_id)
