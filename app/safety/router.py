"""Safety report routes: reporters file, list, read and withdraw their own; admins triage
the queue and hold components from a report."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.auth.dependencies import AdminDep, AuthenticatedDep
from app.catalogue.visibility import visible_model
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import problems
from app.ids import IdPath
from app.pagination import Page, PageDep, encode_cursor
from app.safety import policies, queue, reports, triage
from app.safety.schemas import (
    AdminReportOut,
    Category,
    PolicyIn,
    PolicyOut,
    ReportCreate,
    ReportHoldIn,
    ReportHoldOut,
    ReportOut,
    ReportStatus,
    ReportTriage,
    ReportWithdraw,
    Severity,
)
from app.safety.views import admin_views, reporter_views

router = APIRouter(tags=["safety"])
MODEL = "/v1/models/{namespace}/{name}"
Statuses = Annotated[list[ReportStatus] | None, Query(max_length=6)]
Severities = Annotated[list[Severity] | None, Query(max_length=4)]
Hours = Annotated[int | None, Query(ge=0, le=24 * 365 * 10)]


def _page(items: list[ReportOut], limit: int) -> Page[ReportOut]:
    nxt = encode_cursor(items[-1].id) if len(items) == limit else None
    return Page(items=items, next_cursor=nxt)


@router.post(MODEL + "/reports", status_code=201, responses=problems(401, 404, 422, 429))
def file_report(
    namespace: str,
    name: str,
    body: ReportCreate,
    principal: AuthenticatedDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> ReportOut:
    """Report a problem in a release you may download (a user with the tier or an access
    grant, or a partner): its components (optional), category, severity, description and
    evidence. A component, release or model you may not download answers 404, exactly as
    a missing one; reports are rate limited per reporter (429)."""
    row, _ = reports.file_report(
        session,
        principal=principal,
        namespace=namespace,
        name=name,
        body=body,
        settings=settings,
        now=clock.now(),
        ctx=ctx,
    )
    return reporter_views(session, [row])[0]


@router.get(MODEL + "/reports", responses=problems(401, 404, 422))
def model_reports(
    namespace: str,
    name: str,
    principal: AuthenticatedDep,
    session: SessionDep,
    clock: ClockDep,
    page: PageDep,
    status: Statuses = None,
) -> Page[ReportOut]:
    """Reports on this model: admins see all of them (``GET /v1/reports?model=`` also says
    who filed each), anyone else only their own."""
    model, _ = visible_model(session, principal, namespace, name, now=clock.now())
    if principal.is_admin:
        rows = queue.model_reports(
            session, model_id=model.id, statuses=status or (), after=page.after, limit=page.limit
        )
    else:
        rows = queue.own_reports(
            session,
            reporter=principal.subject,
            model_id=model.id,
            statuses=status or (),
            after=page.after,
            limit=page.limit,
            newest_first=False,
        )
    return _page(reporter_views(session, rows), page.limit)


@router.get("/v1/me/reports", responses=problems(401, 422))
def my_reports(
    principal: AuthenticatedDep,
    session: SessionDep,
    page: PageDep,
    status: Statuses = None,
) -> Page[ReportOut]:
    """The caller's own reports, newest first, each with its status and the notes admins
    left for them."""
    rows = queue.own_reports(
        session,
        reporter=principal.subject,
        statuses=status or (),
        after=page.after,
        limit=page.limit,
        newest_first=True,
    )
    return _page(reporter_views(session, rows), page.limit)


@router.get("/v1/reports", responses=problems(401, 403, 404, 422))
def report_queue(
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    page: PageDep,
    model: Annotated[str | None, Query(max_length=193, examples=["acme/atlas-7b"])] = None,
    status: Statuses = None,
    severity: Severities = None,
    min_severity: Severity | None = None,
    category: Category | None = None,
    older_than_hours: Hours = None,
    newer_than_hours: Hours = None,
    order: Literal["oldest", "newest"] = "oldest",
) -> Page[AdminReportOut]:
    """The triage queue (admin): every report, oldest first, filtered by model, status
    (``?status=new&status=triaged`` for what is open), severity (exact, or at least
    ``min_severity``), category and age."""
    rows = queue.triage_queue(
        session,
        now=clock.now(),
        model=model,
        statuses=status or (),
        severities=severity or (),
        min_severity=min_severity,
        category=category,
        older_than_hours=older_than_hours,
        newer_than_hours=newer_than_hours,
        after=page.after,
        limit=page.limit,
        newest_first=order == "newest",
    )
    items = admin_views(session, rows)
    nxt = encode_cursor(items[-1].id) if len(items) == page.limit else None
    return Page(items=items, next_cursor=nxt)


@router.get("/v1/reports/{report_id}", responses=problems(401, 404))
def get_report(
    report_id: IdPath, principal: AuthenticatedDep, session: SessionDep
) -> AdminReportOut | ReportOut:
    """One report: its reporter sees it with its status and notes, admins see every report
    (with who filed it); anyone else gets 404."""
    row = reports.own_report(session, principal, report_id)
    if principal.is_admin:
        return admin_views(session, [row])[0]
    return reporter_views(session, [row])[0]


@router.patch("/v1/reports/{report_id}", responses=problems(401, 403, 404, 409, 422))
def triage_report(
    report_id: IdPath,
    body: ReportTriage,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AdminReportOut:
    """Triage (admin): change the status (``triaged``, ``actioned``, ``dismissed``,
    ``duplicate`` with ``duplicate_of``) and/or leave a note the reporter sees."""
    row = triage.triage(
        session, admin=admin, report_id=report_id, body=body, now=clock.now(), ctx=ctx
    )
    return admin_views(session, [row])[0]


@router.post("/v1/reports/{report_id}/withdraw", responses=problems(401, 404, 409, 422))
def withdraw_report(
    report_id: IdPath,
    principal: AuthenticatedDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    body: ReportWithdraw | None = None,
) -> ReportOut:
    """The reporter withdraws their open report; it stops counting towards the model's
    safety policy (a hold already placed stays until an admin resumes)."""
    row = reports.withdraw(
        session,
        principal=principal,
        report_id=report_id,
        note=body.note if body else None,
        now=clock.now(),
        ctx=ctx,
    )
    return reporter_views(session, [row])[0]


@router.post("/v1/reports/{report_id}/hold", responses=problems(401, 403, 404, 409, 422))
def hold_from_report(
    report_id: IdPath,
    body: ReportHoldIn,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ReportHoldOut:
    """Hold a component of the report's release now (admin); the hold's reason links the
    report, and an open report becomes ``actioned``."""
    row, schedule = triage.hold_from_report(
        session, admin=admin, report_id=report_id, body=body, now=clock.now(), ctx=ctx
    )
    return ReportHoldOut(report=admin_views(session, [row])[0], schedule=schedule)


@router.get(MODEL + "/safety-policy", responses=problems(401, 403, 404))
def get_safety_policy(namespace: str, name: str, admin: AdminDep, session: SessionDep) -> PolicyOut:
    """The model's automatic hold policy (off unless set) and the holds it placed."""
    return policies.policy_out(session, queue.admin_model(session, namespace, name))


@router.put(MODEL + "/safety-policy", responses=problems(401, 403, 404, 422))
def put_safety_policy(
    namespace: str,
    name: str,
    body: PolicyIn,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> PolicyOut:
    """Set the policy: when ``min_reporters`` distinct reporters who may download a
    component have open reports of at least ``min_severity`` on it, and its next stage is
    due within ``window_hours``, that stage is held (by ``system:safety-policy``) until an
    admin resumes. Applies at once to the reports already open."""
    model = queue.admin_model(session, namespace, name)
    policies.set_policy(session, model=model, body=body, actor=admin, now=clock.now(), ctx=ctx)
    return policies.policy_out(session, model)
