"""Clearance of a principal for a model, and the access rule applied to components.

Clearance: admins → internal; a partner whose agreement covers the model (not ended, partner
not disabled) → partner; a user with an active grant → research; everyone else → open.

The decision itself (:func:`clearance_of`) is pure; :func:`clearance_for` and
:func:`clearances_for` only look up the two facts it needs, with indexed single-row (or
one ``IN``) queries, so its cost does not grow with the number of grants, users or models.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.access.principals import Principal
from app.access.tiers import Tier, may_download
from app.models import Grant, Partner, PartnerAgreement
from app.schedule.evaluate import ScheduleState, effective_tier


def clearance_of(principal: Principal, *, covered: bool, granted: bool) -> Tier:
    """The clearance DESIGN.md defines, from who the caller is and what it holds."""
    if principal.is_admin:
        return Tier.INTERNAL
    if principal.kind == "partner" and covered:
        return Tier.PARTNER
    if principal.kind == "user" and granted:
        return Tier.RESEARCH
    return Tier.OPEN


def _agreement_live(now: datetime) -> list[ColumnElement[bool]]:
    return [
        or_(PartnerAgreement.ends_at.is_(None), PartnerAgreement.ends_at > now),
        Partner.disabled_at.is_(None),
    ]


def clearance_for(session: Session, principal: Principal, model_id: int, *, now: datetime) -> Tier:
    return clearances_for(session, principal, [model_id], now=now)[model_id]


def clearances_for(
    session: Session, principal: Principal, model_ids: Sequence[int], *, now: datetime
) -> dict[int, Tier]:
    """Clearance for each model, with at most one query whatever the number of models."""
    ids = list(dict.fromkeys(model_ids))
    held: set[int] = set()
    if ids and principal.kind == "partner" and principal.id is not None:
        held = set(
            session.scalars(
                select(PartnerAgreement.model_id)
                .join(Partner, Partner.id == PartnerAgreement.partner_id)
                .where(
                    PartnerAgreement.partner_id == principal.id,
                    PartnerAgreement.model_id.in_(ids),
                    *_agreement_live(now),
                )
            )
        )
    elif ids and principal.kind == "user" and principal.id is not None and not principal.is_admin:
        held = set(
            session.scalars(
                select(Grant.model_id).where(
                    Grant.user_id == principal.id,
                    Grant.model_id.in_(ids),
                    Grant.revoked_at.is_(None),
                )
            )
        )
    return {
        m: clearance_of(
            principal,
            covered=principal.kind == "partner" and m in held,
            granted=principal.kind == "user" and m in held,
        )
        for m in ids
    }


def component_allows(state: ScheduleState, clearance: Tier, now: datetime) -> bool:
    """The access rule: ``clearance`` may download the component at ``now``."""
    return may_download(clearance, effective_tier(state, now))
