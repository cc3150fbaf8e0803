"""Safety reports in the console: everyone's own reports (read, withdraw), and for admins
the triage queue, a report's triage form and "hold from this report". The pages call the
safety services the API calls, with the same rules: a report that is not yours is a 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from app.console.researcher_pages import validation_message
from app.console.security import PREFIX
from app.console.session import CheckedForm, Signed, page_not_found, principal_of
from app.console.templating import render
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError
from app.ids import parse_row_id
from app.safety import queue, reports, triage
from app.safety.schemas import ReportHoldIn, ReportTriage, Severity
from app.safety.views import admin_views, reporter_views

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 100
OPEN = ("new", "triaged")
STATUSES = ("new", "triaged", "actioned", "dismissed", "duplicate", "withdrawn")


@router.get("/reports")
def report_list(
    request: Request,
    found: Signed,
    session: SessionDep,
    clock: ClockDep,
    status: Annotated[str, Query(max_length=16)] = "open",
    min_severity: Annotated[str, Query(max_length=16)] = "low",
) -> Response:
    """Admins: the triage queue (open reports by default, oldest first). Others: their own
    reports, newest first."""
    principal = principal_of(found)
    statuses = OPEN if status == "open" else ((status,) if status in STATUSES else ())
    if not statuses and status != "all":
        raise page_not_found()
    floor = Severity(min_severity) if min_severity in set(Severity) else Severity.LOW
    if principal.is_admin:
        rows = queue.triage_queue(
            session,
            now=clock.now(),
            model=None,
            statuses=statuses,
            severities=(),
            min_severity=floor,
            category=None,
            older_than_hours=None,
            newer_than_hours=None,
            after=None,
            limit=PAGE,
            newest_first=False,
        )
        items: list[object] = list(admin_views(session, rows))
    else:
        rows = queue.own_reports(
            session,
            reporter=principal.subject,
            statuses=statuses,
            after=None,
            limit=PAGE,
            newest_first=True,
        )
        items = list(reporter_views(session, rows))
    return render(
        request,
        "reports.html",
        {
            "items": items,
            "admin": principal.is_admin,
            "status": status,
            "min_severity": floor.value,
            "statuses": STATUSES,
            "severities": [s.value for s in Severity],
            "now": clock.now(),
        },
    )


def _report_page(
    request: Request,
    found: Signed,
    session: SessionDep,
    report_id: str,
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    rid = parse_row_id(report_id)
    if rid is None:
        raise page_not_found()
    principal = principal_of(found)
    try:
        row = reports.own_report(session, principal, rid)
    except AppError:
        raise page_not_found() from None
    view = (
        admin_views(session, [row])[0] if principal.is_admin else reporter_views(session, [row])[0]
    )
    return render(
        request,
        "report.html",
        {
            "r": view,
            "admin": principal.is_admin,
            "error": error,
            "triage_statuses": ("triaged", "actioned", "dismissed", "duplicate"),
        },
        status=status,
    )


@router.get("/reports/{report_id}")
def report_page(request: Request, report_id: str, found: Signed, session: SessionDep) -> Response:
    return _report_page(request, found, session, report_id)


def _act(
    request: Request,
    found: Signed,
    session: SessionDep,
    report_id: str,
    action: Callable[[int], object],
) -> Response:
    """Run ``action`` (a callable taking the report id); on a refusal, show the page again
    with the error, nothing written."""
    rid = parse_row_id(report_id)
    if rid is None:
        raise page_not_found()
    try:
        action(rid)
    except ValidationError as e:
        session.rollback()
        return _report_page(
            request, found, session, report_id, error=validation_message(e), status=422
        )
    except AppError as e:
        session.rollback()
        if e.status == 404:
            raise page_not_found() from None
        return _report_page(request, found, session, report_id, error=e.detail, status=e.status)
    return RedirectResponse(f"{PREFIX}/reports/{rid}", status_code=303)


@router.post("/reports/{report_id}/withdraw")
def withdraw(
    request: Request,
    report_id: str,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    principal = principal_of(found)
    note = form.get("note", "").strip() or None
    return _act(
        request,
        found,
        session,
        report_id,
        lambda rid: reports.withdraw(
            session, principal=principal, report_id=rid, note=note, now=clock.now(), ctx=ctx
        ),
    )


@router.post("/reports/{report_id}/triage")
def triage_report(
    request: Request,
    report_id: str,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    principal = principal_of(found)
    if not principal.is_admin:
        raise page_not_found()

    def run(rid: int) -> None:
        duplicate_of = parse_row_id(form.get("duplicate_of", "").strip())
        body = ReportTriage(
            status=form.get("status") or None,
            note=form.get("note", "").strip() or None,
            duplicate_of=duplicate_of,
        )
        triage.triage(session, admin=principal, report_id=rid, body=body, now=clock.now(), ctx=ctx)

    return _act(request, found, session, report_id, run)


@router.post("/reports/{report_id}/hold")
def hold(
    request: Request,
    report_id: str,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    principal = principal_of(found)
    if not principal.is_admin:
        raise page_not_found()

    def run(rid: int) -> None:
        body = ReportHoldIn(
            component=form.get("component") or None, reason=form.get("reason", "").strip() or None
        )
        triage.hold_from_report(
            session, admin=principal, report_id=rid, body=body, now=clock.now(), ctx=ctx
        )

    return _act(request, found, session, report_id, run)
