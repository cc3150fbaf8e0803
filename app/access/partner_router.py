"""HTTP routes for a partner's own people (users linked to a partner organisation): the
agreement, secret rotation with a grace period, and the partner's recent activity."""

from __future__ import annotations

from fastapi import APIRouter

from app.access import partner_users
from app.access.schemas import (
    PartnerActivityOut,
    PartnerSelfOut,
    PartnerWithSecret,
    SecretRotation,
)
from app.auth.dependencies import UserDep
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import problems
from app.pagination import Page, PageDep, encode_cursor

router = APIRouter(tags=["access"])


@router.get("/v1/me/partner", responses=problems(401, 403, 404))
def my_partner(principal: UserDep, session: SessionDep, clock: ClockDep) -> PartnerSelfOut:
    """The partner organisation the caller works for: its client id, the models its
    agreements cover (with end dates), the tier they give, and its secret's state.
    ``404 partner_not_found`` for users who work for none."""
    partner = partner_users.partner_of(session, principal)
    return partner_users.partner_view(session, partner, now=clock.now())


@router.post("/v1/me/partner/rotate-secret", responses=problems(401, 403, 404, 422))
def rotate_my_partner_secret(
    body: SecretRotation,
    principal: UserDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> PartnerWithSecret:
    """A new client secret for the caller's partner, in this response only. With
    ``previous_secret_valid_for_seconds`` the old one keeps working that long (at most
    7 days); without, it stops at once and its access tokens are revoked."""
    now = clock.now()
    partner, secret = partner_users.rotate_secret(
        session,
        principal=principal,
        previous_secret_valid_for_seconds=body.previous_secret_valid_for_seconds,
        now=now,
        ctx=ctx,
    )
    view = partner_users.partner_view(session, partner, now=now)
    return PartnerWithSecret(**view.model_dump(exclude={"tier"}), client_secret=secret)


@router.get("/v1/me/partner/activity", responses=problems(401, 403, 404, 422))
def my_partner_activity(
    principal: UserDep, session: SessionDep, page: PageDep
) -> Page[PartnerActivityOut]:
    """The partner's own recent events from the audit log, newest first: access tokens,
    download tokens, downloads and denials of its clients, and changes made to it."""
    partner = partner_users.partner_of(session, principal)
    rows = partner_users.activity(session, partner, before_id=page.after, limit=page.limit + 1)
    items = [PartnerActivityOut.model_validate(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)
