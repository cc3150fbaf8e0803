"""The admin's partner pages: partner organisations (create one: its client secret shown
once), a partner's agreement (add a model, end one now), its client secret (rotate, with a
grace period for the old one), disabling and re-enabling it, and what was done to it (the
audit events whose target it is). Every change is ``PATCH /v1/partners/{id}`` (or
``POST /v1/partners``) through the same service function, input model and errors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.access import partners
from app.access.schemas import PartnerCreate, PartnerOut, PartnerPatch
from app.audit.trail import events_about
from app.console.partner_pages import UNITS, grace_seconds
from app.console.schedule_actions import parse
from app.console.security import PREFIX
from app.console.session import AdminSession, CheckedForm, principal_of
from app.console.templating import local_instant, render
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError
from app.ids import IdPath
from app.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
TRAIL_PAGE = 20
Cursor = Annotated[str | None, Query(max_length=64)]
DONE = {
    "added": "Agreement extended to the model.",
    "ended": "Agreement ended for the model: the partner's tokens for it were revoked.",
    "disabled": "Disabled: its clients get no token, and its tokens were revoked.",
    "enabled": "Enabled: its clients may get tokens again.",
}
GRACE_ERROR = (
    "The grace period must be a whole number of seconds, minutes, hours or days, at most 7 days."
)


def _list(
    request: Request,
    session: Session,
    *,
    now_clock: ClockDep,
    cursor: str | None = None,
    created: dict[str, Any] | None = None,
    error: str = "",
    draft: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    rows = partners.partners_page(
        session,
        after=decode_cursor(cursor) if cursor else None,
        limit=PAGE + 1,
        now=now_clock.now(),
    )
    shown = rows[:PAGE]
    return render(
        request,
        "partners.html",
        {
            "partners": shown,
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > PAGE else None,
            "created": created,
            "error": error,
            "draft": draft or {},
        },
        status=status,
    )


@router.get("/partners")
def partners_list(
    request: Request,
    admin: AdminSession,
    session: SessionDep,
    clock: ClockDep,
    cursor: Cursor = None,
) -> Response:
    return _list(request, session, now_clock=clock, cursor=cursor)


@router.post("/partners")
def create(
    request: Request,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """``POST /v1/partners`` from a form: a name and the covered models, one per line."""
    draft = {"name": form.get("name", ""), "models": form.get("models", "")}
    models = [m.strip() for m in draft["models"].splitlines() if m.strip()]
    try:
        body: PartnerCreate = parse(PartnerCreate, {"name": draft["name"], "models": models})
        partner, secret = partners.create_partner(
            session, body=body, actor=principal_of(admin), now=clock.now(), ctx=ctx
        )
    except AppError as e:
        session.rollback()
        return _list(
            request, session, now_clock=clock, error=e.detail, draft=draft, status=e.status
        )
    created = {
        "partner": partners.partner_view(session, partner.id, now=clock.now()),
        "secret": secret,
    }
    return _list(request, session, now_clock=clock, created=created)


def render_partner(
    request: Request,
    session: Session,
    partner_id: int,
    *,
    now_clock: ClockDep,
    trail_cursor: str | None = None,
    notice: str | None = None,
    secret: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    partner = partners.partner_view(session, partner_id, now=now_clock.now())
    trail = events_about(
        session,
        "partner",
        partner.id,
        before_id=decode_cursor(trail_cursor) if trail_cursor else None,
        limit=TRAIL_PAGE + 1,
    )
    shown = trail[:TRAIL_PAGE]
    return render(
        request,
        "partner_admin.html",
        {
            "partner": partner,
            "trail": shown,
            "trail_next": encode_cursor(shown[-1].id) if len(trail) > TRAIL_PAGE else None,
            "units": list(UNITS),
            "notice": notice,
            "secret": secret,
            "error": error,
        },
        status=status,
    )


@router.get("/partners/{partner_id}")
def partner_page(
    request: Request,
    partner_id: IdPath,
    admin: AdminSession,
    session: SessionDep,
    clock: ClockDep,
    trail_cursor: Cursor = None,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    return render_partner(
        request,
        session,
        partner_id,
        now_clock=clock,
        trail_cursor=trail_cursor,
        notice=DONE.get(done or ""),
    )


def _patch(
    request: Request,
    session: Session,
    partner_id: int,
    data: dict[str, Any],
    *,
    admin: AdminSession,
    clock: ClockDep,
    ctx: ContextDep,
) -> tuple[str | None, Response | None]:
    """Apply ``data`` as the API's ``PartnerPatch``: the new secret if one was made, or the
    page with the refusal shown."""
    try:
        body: PartnerPatch = parse(PartnerPatch, data)
        _, secret = partners.update_partner(
            session,
            partner_id=partner_id,
            body=body,
            actor=principal_of(admin),
            now=clock.now(),
            ctx=ctx,
        )
    except AppError as e:
        session.rollback()
        page = render_partner(
            request, session, partner_id, now_clock=clock, error=e.detail, status=e.status
        )
        return None, page
    return secret, None


def _done(partner_id: int, done: str) -> Response:
    return RedirectResponse(f"{PREFIX}/partners/{partner_id}?done={done}", status_code=303)


def _live_agreements(partner: PartnerOut, *, without: str = "") -> list[dict[str, Any]]:
    """The agreements that stay, as the API's ``models`` list (their end dates unchanged)."""
    return [
        {"model": a.model, "ends_at": a.ends_at.isoformat() if a.ends_at else None}
        for a in partner.models
        if a.active and a.model != without
    ]


@router.post("/partners/{partner_id}/rotate-secret")
def rotate_secret(
    request: Request,
    partner_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """The new secret is shown on this answer only (a page, not a redirect)."""
    grace = grace_seconds(form.get("grace_amount", ""), form.get("grace_unit", ""))
    if grace is None:
        return render_partner(
            request, session, partner_id, now_clock=clock, error=GRACE_ERROR, status=422
        )
    data = {"rotate_secret": True, "previous_secret_valid_for_seconds": grace}
    secret, refused = _patch(request, session, partner_id, data, admin=admin, clock=clock, ctx=ctx)
    if refused is not None:
        return refused
    return render_partner(request, session, partner_id, now_clock=clock, secret=secret or "")


@router.post("/partners/{partner_id}/agreements")
def add_model(
    request: Request,
    partner_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    partner = partners.partner_view(session, partner_id, now=clock.now())
    model = form.get("model", "").strip()
    try:
        ends = local_instant(form.get("ends_at", ""), request)
    except AppError as e:
        return render_partner(
            request, session, partner_id, now_clock=clock, error=e.detail, status=e.status
        )
    kept = _live_agreements(partner, without=model)
    models = [*kept, {"model": model, "ends_at": ends.isoformat() if ends else None}]
    _, refused = _patch(
        request, session, partner_id, {"models": models}, admin=admin, clock=clock, ctx=ctx
    )
    return refused or _done(partner_id, "added")


@router.post("/partners/{partner_id}/agreements/end")
def end_agreement(
    request: Request,
    partner_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """End the agreement on one model now: the API's ``models`` list without it."""
    partner = partners.partner_view(session, partner_id, now=clock.now())
    model = form.get("model", "")
    if not any(a.active and a.model == model for a in partner.models):
        error = f"The agreement does not cover {model!r} now."
        return render_partner(
            request, session, partner_id, now_clock=clock, error=error, status=422
        )
    models = _live_agreements(partner, without=model)
    _, refused = _patch(
        request, session, partner_id, {"models": models}, admin=admin, clock=clock, ctx=ctx
    )
    return refused or _done(partner_id, "ended")


@router.post("/partners/{partner_id}/disable")
def disable(
    request: Request,
    partner_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    _, refused = _patch(
        request, session, partner_id, {"disabled": True}, admin=admin, clock=clock, ctx=ctx
    )
    return refused or _done(partner_id, "disabled")


@router.post("/partners/{partner_id}/enable")
def enable(
    request: Request,
    partner_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    _, refused = _patch(
        request, session, partner_id, {"disabled": False}, admin=admin, clock=clock, ctx=ctx
    )
    return refused or _done(partner_id, "enabled")
