"""Clearance of a principal for a model, and the access rule applied to components.

Clearance: admins → internal; a partner whose agreement covers the model (and has not
ended) → partner; a user with an active grant → research; everyone else → open.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.access.principals import Principal
from app.access.tiers import Tier, may_download
from app.models import Grant, PartnerAgreement
from app.schedule.evaluate import ScheduleState, effective_tier


def clearance_for(session: Session, principal: Principal, model_id: int, *, now: datetime) -> Tier:
    if principal.is_admin:
        return Tier.INTERNAL
    if principal.kind == "partner" and principal.id is not None:
        covered = session.scalar(
            select(PartnerAgreement.id).where(
                PartnerAgreement.partner_id == principal.id,
                PartnerAgreement.model_id == model_id,
                or_(PartnerAgreement.ends_at.is_(None), PartnerAgreement.ends_at > now),
            )
        )
        return Tier.PARTNER if covered is not None else Tier.OPEN
    if principal.kind == "user" and principal.id is not None:
        granted = session.scalar(
            select(Grant.id).where(
                Grant.user_id == principal.id,
                Grant.model_id == model_id,
                Grant.revoked_at.is_(None),
            )
        )
        return Tier.RESEARCH if granted is not None else Tier.OPEN
    return Tier.OPEN


def component_allows(state: ScheduleState, clearance: Tier, now: datetime) -> bool:
    return may_download(clearance, effective_tier(state, now))
