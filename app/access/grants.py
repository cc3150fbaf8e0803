"""Grants: the research clearance an approved access request gives a user for a model.

Revoking one is immediate — the access rule reads grants at request time — and also revokes
the user's outstanding download tokens for the model, so the revocation shows on them too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app import audit
from app.access import repository as repo
from app.access.schemas import GrantOut, MyGrantOut, UserRef
from app.catalogue.service import manifest
from app.context import RequestContext
from app.errors import NotFound
from app.ids import parse_row_id
from app.models import Grant, Model, User
from app.policy.principals import Principal
from app.revocation.service import revoke_tokens
from app.webhooks.outbox import enqueue_event


def grant_out(grant: Grant, *, model: str, email: str) -> GrantOut:
    return GrantOut(
        model=model,
        user=UserRef(id=grant.user_id, email=email),
        request_id=grant.request_id,
        granted_by=grant.granted_by,
        created_at=grant.created_at,
        revoked_at=grant.revoked_at,
        revoke_reason=grant.revoke_reason,
    )


def my_grant_out(
    session: Session, principal: Principal, grant: Grant, model: Model, *, now: datetime
) -> MyGrantOut:
    """A grant of the caller's and what it opens, from the latest release's manifest as the
    caller sees it now (none when no release is announced to them)."""
    try:
        seen = manifest(
            session,
            principal=principal,
            namespace=model.namespace,
            name=model.name,
            version="main",
            now=now,
        )
    except NotFound:
        seen = None
    return MyGrantOut(
        model=model.repo_id,
        request_id=grant.request_id,
        created_at=grant.created_at,
        active=grant.revoked_at is None,
        revoked_at=grant.revoked_at,
        revoke_reason=grant.revoke_reason,
        version=seen.version if seen else None,
        revision=seen.revision if seen else None,
        components=seen.components if seen else [],
    )


def resolve_user(session: Session, ref: str) -> User:
    """A user named by id (``42``) or email; the same 404 for either kind of miss."""
    user_id = parse_row_id(ref)
    user = (
        repo.user(session, user_id)
        if user_id is not None
        else None
        if ref.isdigit()
        else repo.user_by_email(session, ref)
    )
    if user is None:
        raise NotFound(f"no user {ref[:320]!r}", code="user_not_found")
    return user


def grant_of(session: Session, *, model: Model, user: User) -> Grant:
    """The user's active grant for the model, else their latest revoked one, else 404."""
    grant = repo.active_grant(session, user.id, model.id) or repo.latest_grant(
        session, user.id, model.id
    )
    if grant is None:
        raise NotFound(f"{user.email} has no grant for {model.repo_id}", code="grant_not_found")
    return grant


def revoke_grant(
    session: Session,
    *,
    model: Model,
    user: User,
    reason: str | None,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> Grant:
    grant = repo.active_grant(session, user.id, model.id, for_update=True)
    if grant is None:
        raise NotFound(
            f"{user.email} has no active grant for {model.repo_id}", code="grant_not_found"
        )
    grant.revoked_at = now
    grant.revoked_by = actor.user_id
    grant.revoke_reason = (reason or "").strip()[:2000] or None
    session.flush()
    tokens = revoke_tokens(
        session,
        now=now,
        reason="access grant revoked",
        user_id=user.id,
        model_id=model.id,
    )
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="grant.revoked",
        target_type="grant",
        target_id=grant.id,
        before={"model": model.repo_id, "user": user.id, "active": True},
        after={"model": model.repo_id, "user": user.id, "active": False},
        data={"reason": grant.revoke_reason, "tokens_revoked": tokens},
        ctx=ctx,
    )
    enqueue_event(
        session,
        event_type="grant.revoked",
        data={
            "model": model.repo_id,
            "user": {"id": user.id, "email": user.email},
            "reason": grant.revoke_reason,
        },
        now=now,
    )
    return grant


def audience_counts(session: Session, model_id: int, *, now: datetime) -> tuple[int, int]:
    """Enabled users with an active grant for the model, and enabled partners whose live
    agreement covers it: who a lift to ``research`` or ``partner`` opens it to."""
    return repo.audience_counts(session, model_id, now=now)


def grants_page(
    session: Session, model: Model, *, after: int | None, limit: int, include_revoked: bool
) -> list[tuple[Grant, str]]:
    """The model's grants (with the holder's email) in id order."""
    rows = repo.grants_page(
        session, model.id, after=after, limit=limit, include_revoked=include_revoked
    )
    return [(g, email) for g, email in rows]


def user_grants_page(
    session: Session, user_id: int, *, after: int | None, limit: int
) -> list[tuple[Grant, Model]]:
    """A user's grants (with their model) in id order."""
    return [(g, m) for g, m in repo.user_grants_page(session, user_id, after=after, limit=limit)]
