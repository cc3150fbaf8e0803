"""Clearance of a principal for a model, and the access rule applied to components.

Clearance: admins → internal; a partner whose agreement covers the model (not ended, partner
not disabled) → partner; a user with an active grant → research; everyone else → open.

The decision itself (:func:`clearance_of`, :meth:`Holdings.clearance`) is pure;
:func:`holdings` only looks up the two facts it needs, with one indexed ``IN`` query per
principal kind, so its cost does not grow with the number of grants, users or models, and a
batch of downloads by many principals (:mod:`app.delivery.service`) asks once for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

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


@dataclass(frozen=True)
class Holdings:
    """What some principals hold on some models: live grants and partner agreements.

    Loaded with one query per principal kind (:func:`holdings`), whatever the number of
    principals and models; deciding from it is pure, at any ``now``.
    """

    grants: frozenset[tuple[int, int]] = frozenset()  # (user_id, model_id), not revoked
    # (partner_id, model_id) → the agreements' (ends_at, partner disabled)
    agreements: Mapping[tuple[int, int], tuple[tuple[datetime | None, bool], ...]] = field(
        default_factory=dict
    )

    @classmethod
    def of(
        cls,
        *,
        grants: Iterable[tuple[int, int]],
        agreements: Iterable[tuple[int, int, datetime | None, datetime | None]],
    ) -> Holdings:
        """From rows: ``(user_id, model_id)`` of live grants, ``(partner_id, model_id, ends
        at, partner disabled at)`` of agreements."""
        found: dict[tuple[int, int], tuple[tuple[datetime | None, bool], ...]] = {}
        for p, m, ends_at, disabled_at in agreements:
            found[(p, m)] = (*found.get((p, m), ()), (ends_at, disabled_at is not None))
        return cls(frozenset(grants), found)

    def clearance(self, principal: Principal, model_id: int, now: datetime) -> Tier:
        covered = granted = False
        if principal.kind == "partner" and principal.id is not None:
            covered = any(
                not disabled and (ends_at is None or ends_at > now)
                for ends_at, disabled in self.agreements.get((principal.id, model_id), ())
            )
        elif principal.kind == "user" and principal.id is not None:
            granted = (principal.id, model_id) in self.grants
        return clearance_of(principal, covered=covered, granted=granted)


# Built once: the redemption path asks on every download, and building a select() costs
# more CPU than running it.
_GRANTS = select(Grant.user_id, Grant.model_id).where(
    Grant.user_id.in_(bindparam("uids", expanding=True)),
    Grant.model_id.in_(bindparam("mids", expanding=True)),
    Grant.revoked_at.is_(None),
)
_AGREEMENTS = (
    select(
        PartnerAgreement.partner_id,
        PartnerAgreement.model_id,
        PartnerAgreement.ends_at,
        Partner.disabled_at,
    )
    .join(Partner, Partner.id == PartnerAgreement.partner_id)
    .where(
        PartnerAgreement.partner_id.in_(bindparam("pids", expanding=True)),
        PartnerAgreement.model_id.in_(bindparam("mids", expanding=True)),
    )
)


def holdings(
    session: Session,
    *,
    user_ids: Iterable[int] = (),
    partner_ids: Iterable[int] = (),
    model_ids: Iterable[int],
) -> Holdings:
    """Grants of ``user_ids`` and agreements of ``partner_ids`` on ``model_ids``."""
    mids, uids, pids = sorted(set(model_ids)), sorted(set(user_ids)), sorted(set(partner_ids))
    conn = session.connection()
    grants: Iterable[Any] = ()
    agreements: Iterable[Any] = ()
    if mids and uids:
        grants = conn.execute(_GRANTS, {"uids": uids, "mids": mids})
    if mids and pids:
        agreements = conn.execute(_AGREEMENTS, {"pids": pids, "mids": mids})
    return Holdings.of(grants=grants, agreements=agreements)


def clearance_for(session: Session, principal: Principal, model_id: int, *, now: datetime) -> Tier:
    return clearances_for(session, principal, [model_id], now=now)[model_id]


def clearances_for(
    session: Session, principal: Principal, model_ids: Sequence[int], *, now: datetime
) -> dict[int, Tier]:
    """Clearance for each model, with at most one query whatever the number of models."""
    ids = list(dict.fromkeys(model_ids))
    held = Holdings()
    if ids and principal.id is not None and not principal.is_admin:
        held = holdings(
            session,
            user_ids=[principal.id] if principal.kind == "user" else [],
            partner_ids=[principal.id] if principal.kind == "partner" else [],
            model_ids=ids,
        )
    return {m: held.clearance(principal, m, now) for m in ids}


def component_allows(state: ScheduleState, clearance: Tier, now: datetime) -> bool:
    """The access rule: ``clearance`` may download the component at ``now``."""
    return may_download(clearance, effective_tier(state, now))
