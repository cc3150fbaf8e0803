"""Safety reports in the console: everyone's own reports (read, withdraw), and for admins
the triage queue, a report's triage form and "hold from this report". The pages call the
safety services the API calls, with the same rules: a report that is not yours is a 404."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from app.console.researcher_pages import validation_message
from app.console.security import PREFIX
from app.console.session import (
    AdminSession,
    CheckedForm,
    Signed,
    form_list,
    page_not_found,
    principal_of,
)
from app.console.templating import render
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import AppError
from app.ids import parse_row_id
from app.safety import policies, queue, reports, triage
from app.safety.schemas import (
    Category,
    PolicyIn,
    ReportCreate,
    ReportHoldIn,
    ReportTriage,
    Severity,
)
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


def _policy_page(
    request: Request,
    session: SessionDep,
    namespace: str,
    name: str,
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    model = queue.admin_model(session, namespace, name)
    return render(
        request,
        "safety_policy.html",
        {
            "p": policies.policy_out(session, model),
            "severities": [s.value for s in Severity],
            "error": error,
        },
        status=status,
    )


@router.get("/models/{namespace}/{name}/safety-policy")
def policy_page(
    request: Request, namespace: str, name: str, admin: AdminSession, session: SessionDep
) -> Response:
    return _policy_page(request, session, namespace, name)


@router.post("/models/{namespace}/{name}/safety-policy")
def save_policy(
    request: Request,
    namespace: str,
    name: str,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """The API's ``PUT .../safety-policy`` from a form: the same checks, the same effect
    (turned on, it applies at once to the reports already open)."""
    model = queue.admin_model(session, namespace, name)
    try:
        body = PolicyIn(
            enabled=form.get("enabled") == "yes",
            min_reporters=form.get("min_reporters", ""),
            min_severity=form.get("min_severity", ""),
            window_hours=form.get("window_hours", ""),
        )
        policies.set_policy(
            session, model=model, body=body, actor=principal_of(admin), now=clock.now(), ctx=ctx
        )
    except ValidationError as e:
        session.rollback()
        return _policy_page(
            request, session, namespace, name, error=validation_message(e), status=422
        )
    return RedirectResponse(f"{PREFIX}/models/{model.repo_id}/safety-policy", status_code=303)


def _file_page(
    request: Request,
    session: SessionDep,
    found: Signed,
    namespace: str,
    name: str,
    version: str,
    *,
    now: datetime,
    values: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    """The filing form: only what the caller may download now is offered (anything else
    is the same 404 as a missing model or release)."""
    try:
        model, rel, _ = reports.reportable_components(
            session,
            principal_of(found),
            namespace,
            name,
            version=version,
            components=[],
            now=now,
        )
        names = reports.downloadable_names(session, principal_of(found), model, rel, now=now)
    except AppError:
        raise page_not_found() from None
    return render(
        request,
        "report_new.html",
        {
            "model": model.repo_id,
            "version": rel.version,
            "components": names,
            "categories": [c.value for c in Category],
            "severities": [s.value for s in Severity],
            "values": values or {},
            "error": error,
        },
        status=status,
    )


@router.get("/catalogue/{namespace}/{name}/report")
def file_form(
    request: Request,
    namespace: str,
    name: str,
    found: Signed,
    session: SessionDep,
    clock: ClockDep,
    version: Annotated[str, Query(min_length=1, max_length=64)] = "main",
) -> Response:
    return _file_page(request, session, found, namespace, name, version, now=clock.now())


@router.post("/catalogue/{namespace}/{name}/report")
async def file_from_form(
    request: Request,
    namespace: str,
    name: str,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> Response:
    """The API's ``POST .../reports`` from a form: the same checks, quota and answers."""
    now = clock.now()
    version = form.get("version", "main")
    chosen = await form_list(request, "components")
    try:
        body = ReportCreate(
            version=version,
            components=chosen,
            category=form.get("category", ""),
            severity=form.get("severity", ""),
            description=form.get("description", ""),
            evidence=form.get("evidence", ""),
        )
        row, _ = reports.file_report(
            session,
            principal=principal_of(found),
            namespace=namespace,
            name=name,
            body=body,
            settings=settings,
            now=now,
            ctx=ctx,
        )
    except ValidationError as e:
        return _file_page(
            request,
            session,
            found,
            namespace,
            name,
            version,
            now=now,
            values=form,
            error=validation_message(e),
            status=422,
        )
    except AppError as e:
        session.rollback()
        if e.status == 404:
            raise page_not_found() from None
        return _file_page(
            request,
            session,
            found,
            namespace,
            name,
            version,
            now=now,
            values=form,
            error=e.detail,
            status=e.status,
        )
    return RedirectResponse(f"{PREFIX}/reports/{row.id}", status_code=303)
