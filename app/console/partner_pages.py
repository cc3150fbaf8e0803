"""The partner page: for users linked to a partner organisation, its agreement (models,
tier, client id), rotating its client secret with the API's grace period (the new secret
shown once), and its own recent token and download activity from the audit log.

Everyone else gets the console's ordinary 404 (a researcher cannot tell the page exists).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.access import partner_users
from app.access.schemas import MAX_SECRET_OVERLAP_SECONDS, PartnerActivityOut
from app.console.researcher_pages import Cursor
from app.console.security import PREFIX
from app.console.session import CheckedForm, Signed, page_not_found, principal_of
from app.console.templating import render
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError, NotFound
from app.models import Partner
from app.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ACTIVITY_PAGE = 50
# The old secret's grace period is typed as an amount and a unit, up to the API's maximum.
UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86_400}


def grace_seconds(amount: str, unit: str) -> int | None:
    """The grace period the form asks for, or ``None`` when it is not a whole amount of a
    known unit within 0..7 days."""
    amount = amount.strip()
    if unit not in UNITS or not amount.isdigit() or len(amount) > 9:
        return None
    seconds = int(amount) * UNITS[unit]
    return seconds if seconds <= MAX_SECRET_OVERLAP_SECONDS else None


def _partner(session: SessionDep, found: Signed) -> Partner:
    try:
        return partner_users.partner_of(session, principal_of(found))
    except NotFound as e:
        raise page_not_found() from e


def _page(
    request: Request,
    session: SessionDep,
    partner: Partner,
    *,
    now_clock: ClockDep,
    cursor: str | None = None,
    secret: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    rows = partner_users.activity(
        session,
        partner,
        before_id=decode_cursor(cursor) if cursor else None,
        limit=ACTIVITY_PAGE + 1,
    )
    events = [PartnerActivityOut.model_validate(r) for r in rows[:ACTIVITY_PAGE]]
    more = len(rows) > ACTIVITY_PAGE
    return render(
        request,
        "partner.html",
        {
            "partner": partner_users.partner_view(session, partner, now=now_clock.now()),
            "events": events,
            "older": encode_cursor(events[-1].id) if more else None,
            "units": list(UNITS),
            "secret": secret,
            "error": error,
        },
        status=status,
    )


@router.get("/partner")
def partner_page(
    request: Request, found: Signed, session: SessionDep, clock: ClockDep, cursor: Cursor = None
) -> Response:
    return _page(request, session, _partner(session, found), now_clock=clock, cursor=cursor)


@router.post("/partner/rotate-secret")
def rotate_secret(
    request: Request,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """``POST /v1/me/partner/rotate-secret`` from a form; the new secret is on this answer
    only."""
    partner = _partner(session, found)
    grace = grace_seconds(form.get("grace_amount", ""), form.get("grace_unit", ""))
    if grace is None:
        error = (
            "The grace period must be a whole number of seconds, minutes, hours or days, "
            "at most 7 days."
        )
        return _page(request, session, partner, now_clock=clock, error=error, status=422)
    try:
        partner, secret = partner_users.rotate_secret(
            session,
            principal=principal_of(found),
            previous_secret_valid_for_seconds=grace,
            now=clock.now(),
            ctx=ctx,
        )
    except AppError as e:
        session.rollback()
        return _page(request, session, partner, now_clock=clock, error=e.detail, status=e.status)
    return _page(request, session, partner, now_clock=clock, secret=secret)
