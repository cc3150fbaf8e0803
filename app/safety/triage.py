"""Admins' side of safety reports: changing a report's status with a note its reporter
sees, and holding a component straight from a report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.context import RequestContext
from app.errors import Conflict, Unprocessable
from app.models import Model, Release, SafetyReport
from app.observability.metrics import observe_time_to_triage
from app.policy.principals import Principal
from app.safety import repository as repo
from app.safety.reports import record_update, report_not_found
from app.safety.schemas import OPEN_STATUSES, ReportHoldIn, ReportTriage
from app.schedule import repository as schedule_repo
from app.schedule import service as schedule_service
from app.schedule.schemas import ScheduleOut


def triage(
    session: Session,
    *,
    admin: Principal,
    report_id: int,
    body: ReportTriage,
    now: datetime,
    ctx: RequestContext | None = None,
) -> SafetyReport:
    """Change the report's status (and/or add a note the reporter sees).

    ``new`` → ``triaged`` → ``actioned`` | ``dismissed`` | ``duplicate`` (of another report
    on the same model); a closed report can be reopened as ``triaged``. A report its
    reporter withdrew stays withdrawn.
    """
    row = repo.report_for_update(session, report_id)
    if row is None:
        raise report_not_found(report_id)
    status = body.status or row.status
    if body.status is None and body.note is None:
        raise Unprocessable("give a status, a note, or both", code="nothing_to_change")
    if row.status == "withdrawn":
        raise Conflict(
            f"safety report {report_id} was withdrawn by its reporter", code="report_withdrawn"
        )
    if body.duplicate_of is not None and status != "duplicate":
        raise Unprocessable(
            "duplicate_of goes with status 'duplicate'", code="duplicate_of_without_duplicate"
        )
    if status == "duplicate":
        _check_duplicate_of(session, row, body.duplicate_of)
        row.duplicate_of = body.duplicate_of
    elif body.status is not None:
        row.duplicate_of = None
    if body.status == row.status and body.note is None and status != "duplicate":
        raise Unprocessable(
            f"safety report {report_id} is already {row.status}", code="nothing_to_change"
        )
    first_triage = row.triaged_at is None and status != "new"
    if first_triage:
        row.triaged_at = now
    record_update(
        session,
        row,
        status=status,
        note=body.note,
        actor=admin,
        action="safety.report.updated",
        now=now,
        ctx=ctx,
    )
    if first_triage:
        observe_time_to_triage((now - row.created_at).total_seconds())
    return row


def _check_duplicate_of(session: Session, row: SafetyReport, original_id: int | None) -> None:
    if original_id is None:
        raise Unprocessable(
            "status 'duplicate' needs duplicate_of: the report this one repeats",
            code="duplicate_of_required",
        )
    if original_id == row.id:
        raise Unprocessable("a report cannot duplicate itself", code="invalid_duplicate_of")
    original = repo.report(session, original_id)
    if original is None or original.model_id != row.model_id:
        raise Unprocessable(
            f"duplicate_of: no safety report {original_id} on the same model",
            code="invalid_duplicate_of",
        )


def hold_from_report(
    session: Session,
    *,
    admin: Principal,
    report_id: int,
    body: ReportHoldIn,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[SafetyReport, ScheduleOut]:
    """Hold one of the report's release's components; the hold's reason links the report,
    and an open report becomes ``actioned`` (its reporter sees the component was held)."""
    row = repo.report_for_update(session, report_id)
    if row is None:
        raise report_not_found(report_id)
    component = body.component
    if component is None:
        if len(row.components) != 1:
            raise Unprocessable(
                "this report names "
                + ("no component" if not row.components else "several components")
                + "; say which to hold (component)",
                code="component_required",
            )
        component = row.components[0]
    rel = session.get(Release, row.release_id)
    model = session.get(Model, row.model_id)
    # Reports are deleted with their model and release (cascades): both are there.
    assert rel is not None
    assert model is not None
    target = schedule_service.load_target(
        session, model.namespace, model.name, rel.version, component
    )
    reason = f"safety report #{row.id} ({row.severity}, {row.category})"
    if body.reason:
        reason += f": {body.reason.strip()}"
    schedule_service.hold(
        session,
        target=target,
        reason=reason,
        actor=admin,
        now=now,
        ctx=ctx,
        extra={"report": row.id},
    )
    note = f"{component} of {model.repo_id}@{rel.version} is held while this is reviewed"
    record_update(
        session,
        row,
        status="actioned" if row.status in OPEN_STATUSES else row.status,
        note=note,
        actor=admin,
        action="safety.report.updated",
        now=now,
        ctx=ctx,
        extra={"held": component},
    )
    if row.triaged_at is None:
        row.triaged_at = now
        observe_time_to_triage((now - row.created_at).total_seconds())
    stages = schedule_repo.stages(session, target.component.id)
    return row, schedule_service.schedule_out(target, stages, now=now)
