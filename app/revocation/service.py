"""Revoking issued tokens in bulk: by principal, by model, by component tier.

Called by the access domain (grant revoked, partner agreement ended), the schedule domain
(component held or restricted below a token's tier) and the token routes. Rows are updated in
the caller's transaction; verification re-reads ``revoked_at``, so revocation is immediate.
Also here: revoking one token (its owner or an admin) and every token of a principal.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import audit
from app.context import RequestContext
from app.errors import NotFound, Unprocessable
from app.models import IssuedToken
from app.policy.principals import Principal, parse_subject
from app.policy.tiers import Tier
from app.revocation import repository as repo

# Tokens revoked per UPDATE when they are picked one by one: far below every driver's limit
# on bound parameters (SQLite's is 32,766).
_CHUNK = 1000


def revoke_tokens(
    session: Session,
    *,
    now: datetime,
    reason: str,
    user_id: int | None = None,
    partner_id: int | None = None,
    model_id: int | None = None,
    release_id: int | None = None,
    tiers: set[Tier] | None = None,
    kind: str | None = None,
    component: str | None = None,
) -> int:
    """Revoke every live token matching all given filters; returns how many.

    ``tiers`` selects tokens issued at one of those clearances (restricting a component to
    ``partner`` revokes tokens issued with ``research`` or ``open`` clearance).
    ``component`` (with ``release_id``) selects the tokens whose scope covers that
    component of the release: restricting the weights must not kill a token for the config.
    """
    conds: list[ColumnElement[bool]] = [
        IssuedToken.revoked_at.is_(None),
        IssuedToken.expires_at > now,
    ]
    if user_id is not None:
        conds.append(IssuedToken.user_id == user_id)
    if partner_id is not None:
        conds.append(IssuedToken.partner_id == partner_id)
    if model_id is not None:
        conds.append(IssuedToken.model_id == model_id)
    if release_id is not None:
        conds.append(IssuedToken.release_id == release_id)
    if tiers is not None:
        conds.append(IssuedToken.tier.in_([t.value for t in tiers]))
    if kind is not None:
        conds.append(IssuedToken.kind == kind)
    if len(conds) == 2:
        raise ValueError("refusing to revoke every token: give at least one filter")
    if component is not None:
        if release_id is None:
            raise ValueError("a component is named within a release: give release_id too")
        return _revoke_covering(session, conds, component, now=now, reason=reason)
    result = session.execute(
        update(IssuedToken)
        .where(*conds)
        .values(revoked_at=now, revoked_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def covers(scope: object, component: str) -> bool:
    """Whether a token row's scope grants ``component``. A scope without a component list
    (never written by this server) counts as covering everything: revocation fails closed."""
    components = scope.get("components") if isinstance(scope, dict) else None
    return not isinstance(components, list) or component in components


def _revoke_covering(
    session: Session,
    conds: list[ColumnElement[bool]],
    component: str,
    *,
    now: datetime,
    reason: str,
) -> int:
    # The scope is a JSON document whose queries differ between SQLite and PostgreSQL; the
    # live tokens of one release are few enough to read and pick here, in one pass.
    rows = session.execute(select(IssuedToken.jti, IssuedToken.scope).where(*conds)).all()
    chosen = [jti for jti, scope in rows if covers(scope, component)]
    revoked = 0
    for start in range(0, len(chosen), _CHUNK):
        result = session.execute(
            update(IssuedToken)
            .where(IssuedToken.jti.in_(chosen[start : start + _CHUNK]), *conds)
            .values(revoked_at=now, revoked_reason=reason[:200])
            .execution_options(synchronize_session=False)
        )
        revoked += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return revoked


def visible_token(session: Session, jti: str, *, principal: Principal) -> IssuedToken:
    """The token row if the caller owns it or is an admin; the same 404 otherwise."""
    row = repo.token(session, jti) if len(jti) <= 64 else None
    if row is None or not (principal.is_admin or row.subject == principal.subject):
        raise NotFound("no such token", code="token_not_found")
    return row


def revoke_token(
    session: Session,
    *,
    jti: str,
    principal: Principal,
    now: datetime,
    reason: str,
    ctx: RequestContext | None = None,
) -> IssuedToken:
    """Revoke one token (its owner or an admin). Revoking a revoked token changes nothing."""
    row = visible_token(session, jti, principal=principal)
    if repo.revoke(session, jti, now=now, reason=reason or f"revoked by {principal.subject}"):
        audit.record(
            session,
            now=now,
            actor=principal.subject,
            action="token.revoked",
            target_type="token",
            target_id=jti,
            data={"jti": jti, "subject": row.subject, "reason": reason},
            ctx=ctx,
        )
        session.refresh(row)
    return row


def revoke_principal_tokens(
    session: Session,
    *,
    principal_id: str,
    admin: Principal,
    now: datetime,
    reason: str,
    ctx: RequestContext | None = None,
) -> int:
    """Revoke every live token (download and partner access) of ``user:<id>``/``partner:<id>``."""
    parsed = parse_subject(principal_id)
    if parsed is None:
        raise Unprocessable(
            "principal id must look like user:12 or partner:3", code="invalid_principal"
        )
    kind, ident = parsed
    exists = repo.user(session, ident) if kind == "user" else repo.partner(session, ident)
    if exists is None:
        raise NotFound(f"no principal {principal_id}", code="principal_not_found")
    count = revoke_tokens(
        session,
        now=now,
        reason=reason or f"all tokens revoked by {admin.subject}",
        user_id=ident if kind == "user" else None,
        partner_id=ident if kind == "partner" else None,
    )
    audit.record(
        session,
        now=now,
        actor=admin.subject,
        action="tokens.revoked",
        target_type=kind,
        target_id=principal_id,
        data={"revoked": count, "reason": reason},
        ctx=ctx,
    )
    return count
