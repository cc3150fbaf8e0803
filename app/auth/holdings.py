"""What principals hold (live grants, partner agreements), read for the clearance decision.

The decision itself (:mod:`app.policy.clearance`) is pure; :func:`holdings` only looks up
the two facts it needs, with one indexed ``IN`` query per principal kind, so its cost does
not grow with the number of grants, users or models, and a batch of downloads by many
principals (:mod:`app.delivery.service`) asks once for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.models import Grant, Partner, PartnerAgreement
from app.policy.clearance import Holdings
from app.policy.principals import Principal
from app.policy.tiers import Tier

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
