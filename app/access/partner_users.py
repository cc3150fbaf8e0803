"""A partner organisation's own people: users linked to a partner (``users.partner_id``) see
its agreement, rotate its client secret and read its recent activity, without an admin.

Linking a user to a partner changes nothing about what the user may download: their
clearance stays their own (a grant, or none). The partner tier belongs to the partner's
client credentials, used from the partner's systems.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.access import partners
from app.access import repository as repo
from app.access.schemas import PartnerPatch, PartnerSelfOut
from app.audit import repository as audit_repo
from app.context import RequestContext
from app.errors import Forbidden, NotFound
from app.models import AuditEvent, Partner
from app.policy.principals import Principal


def partner_of(session: Session, principal: Principal, *, for_update: bool = False) -> Partner:
    """The partner ``principal`` (a user) works for; the same 404 for every user who works
    for none, so the route says nothing else about partners."""
    user = repo.user(session, principal.id) if principal.id is not None else None
    partner_id = user.partner_id if user is not None else None
    partner = repo.partner(session, partner_id, for_update=for_update) if partner_id else None
    if partner is None:
        raise NotFound("you are not linked to a partner organisation", code="partner_not_found")
    return partner


def partner_view(session: Session, partner: Partner, *, now: datetime) -> PartnerSelfOut:
    agreements = repo.agreements(session, [partner.id])[partner.id]
    return PartnerSelfOut(**partners.partner_out(partner, agreements, now=now).model_dump())


def rotate_secret(
    session: Session,
    *,
    principal: Principal,
    previous_secret_valid_for_seconds: int,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[Partner, str]:
    """Rotate the secret of the caller's partner, as an admin's ``rotate_secret`` would (same
    grace period rules, same audit event with the caller as actor). Refused while the
    partner is disabled: only an admin decides about a disabled partner."""
    partner = partner_of(session, principal)
    if partner.disabled_at is not None:
        raise Forbidden(
            "this partner organisation is disabled; ask an administrator",
            code="partner_disabled",
        )
    body = PartnerPatch(
        rotate_secret=True,
        previous_secret_valid_for_seconds=previous_secret_valid_for_seconds,
    )
    updated, secret = partners.update_partner(
        session, partner_id=partner.id, body=body, actor=principal, now=now, ctx=ctx
    )
    assert secret is not None  # rotate_secret=True always makes one
    return updated, secret


def activity(
    session: Session, partner: Partner, *, before_id: int | None, limit: int
) -> Sequence[AuditEvent]:
    """The partner's own trail, newest first: what its clients did (access tokens, download
    tokens, downloads, denials), failed sign-ins with its client id, and changes made to it
    (secret rotations, agreements). Never another principal's events."""
    return audit_repo.events_of(
        session,
        actors=[f"partner:{partner.id}", f"client:{partner.client_id}"],
        target=("partner", str(partner.id)),
        before_id=before_id,
        limit=limit,
    )
