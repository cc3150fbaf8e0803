"""Revoking issued tokens in bulk: by principal, by model, by component tier.

Called by the access domain (grant revoked, partner agreement ended), the schedule domain
(component held or restricted below a token's tier) and the token routes. Rows are updated in
the caller's transaction; verification re-reads ``revoked_at``, so revocation is immediate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.access.tiers import Tier
from app.models import IssuedToken


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
) -> int:
    """Revoke every live token matching all given filters; returns how many.

    ``tiers`` selects tokens issued at one of those clearances (restricting a component to
    ``partner`` revokes tokens issued with ``research`` or ``open`` clearance).
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
    result = session.execute(
        update(IssuedToken)
        .where(*conds)
        .values(revoked_at=now, revoked_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
