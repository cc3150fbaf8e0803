"""Filing safety reports, and what reporters may do with their own.

Only a principal who may download what they report on may file: the components named must
be ones the caller may download now (and with none named, the release must hold one). Any
other component, release or model answers exactly like a missing one, so a report can
never be used to learn that something exists. A reporter sees their own reports and nobody
else's; another reporter's report is "not found", whatever the route.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app import audit
from app.catalogue.visibility import release_not_found, visible_model_release
from app.context import RequestContext
from app.errors import Conflict, NotFound, Unauthorized
from app.models import Component, SafetyReport, SafetyReportComponent, SafetyReportUpdate
from app.policy.principals import Principal
from app.quotas import service as quotas
from app.refusals import Reason, refusal
from app.safety import policy
from app.safety import repository as repo
from app.safety.schemas import OPEN_STATUSES, ReportCreate
from app.settings import Settings
from app.webhooks.outbox import enqueue_event

REPORT = "safety_report"


def report_not_found(report_id: int) -> NotFound:
    # The same words for "no such report" and "not yours".
    return NotFound(f"no safety report {report_id}", code="report_not_found")


def reportable_components(
    session: Session,
    principal: Principal,
    namespace: str,
    name: str,
    *,
    version: str,
    components: Sequence[str],
    now: datetime,
) -> tuple[Any, Any, list[Component]]:
    """The model, release and components ``principal`` may report on now; 404s (the same as
    for missing ones) for anything they may not download."""
    model, _, rel, views = visible_model_release(
        session, principal, namespace, name, version, now=now
    )
    downloadable = {v.component.name: v.component for v in views if v.downloadable}
    for wanted in components:
        if wanted not in downloadable:
            raise refusal(Reason.COMPONENT_NOT_FOUND, f"no component {wanted!r} in this release")
    if not components and not downloadable:
        # Nothing in it is open to the caller: they have nothing to report on.
        raise release_not_found(model, version)
    return model, rel, [downloadable[c] for c in sorted(set(components))]


def downloadable_names(
    session: Session, principal: Principal, model: Any, rel: Any, *, now: datetime
) -> list[str]:
    """The components of ``rel`` the caller may download (and so report on) now."""
    _, _, _, views = visible_model_release(
        session, principal, model.namespace, model.name, rel.version, now=now
    )
    return sorted(v.component.name for v in views if v.downloadable)


def file_report(
    session: Session,
    *,
    principal: Principal,
    namespace: str,
    name: str,
    body: ReportCreate,
    settings: Settings,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[SafetyReport, list[Component]]:
    """Record a report (audited, announced as ``safety.report.filed``)."""
    if principal.kind == "anonymous" or principal.id is None:
        raise Unauthorized("safety reports need an API key or a partner access token")
    model, rel, comps = reportable_components(
        session,
        principal,
        namespace,
        name,
        version=body.version,
        components=body.components,
        now=now,
    )
    quotas.charge(session, quotas.reports_quota(settings), key=principal.subject, amount=1, now=now)
    policy.lock_before_filing(session, model_id=model.id, component_ids=[c.id for c in comps])
    row = SafetyReport(
        model_id=model.id,
        release_id=rel.id,
        reporter=principal.subject,
        user_id=principal.user_id,
        partner_id=principal.partner_id,
        components=[c.name for c in comps],
        category=body.category.value,
        severity=body.severity.value,
        description=body.description,
        evidence=body.evidence,
        status="new",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    session.add_all(SafetyReportComponent(report_id=row.id, component_id=c.id) for c in comps)
    session.add(
        SafetyReportUpdate(
            report_id=row.id, at=now, status="new", previous_status=None, actor=principal.subject
        )
    )
    session.flush()
    # Before this report's own audit event: the policy locks the components first and the
    # audit chain after, the order every schedule change takes (app/safety/policy.py).
    policy.evaluate(session, component_ids=[c.id for c in comps], now=now)
    facts = announced_facts(row, model=model.repo_id, version=rel.version)
    audit.record(
        session,
        now=now,
        actor=principal.subject,
        action="safety.report.filed",
        target_type=REPORT,
        target_id=row.id,
        after=facts,
        # The text itself stays out of the audit log: it may hold a working jailbreak or
        # someone's personal data. Its size says it was there.
        data={"description_chars": len(row.description), "evidence_chars": len(row.evidence)},
        ctx=ctx,
    )
    enqueue_event(
        session,
        event_type="safety.report.filed",
        data={**facts, "reporter": row.reporter, "at": now.isoformat()},
        report_text=report_text(row),
        now=now,
    )
    return row, comps


def announced_facts(row: SafetyReport, *, model: str, version: str) -> dict[str, Any]:
    """What audit events and webhooks say about a report, never its text."""
    return {
        "report": row.id,
        "model": model,
        "version": version,
        "components": list(row.components),
        "category": row.category,
        "severity": row.severity,
        "status": row.status,
        "duplicate_of": row.duplicate_of,
    }


def report_text(row: SafetyReport) -> dict[str, Any]:
    return {"description": row.description, "evidence": row.evidence}


def own_report(session: Session, principal: Principal, report_id: int) -> SafetyReport:
    """A report its reporter (or an admin) may read; anyone else's is "not found"."""
    row = repo.report(session, report_id)
    if row is None or (not principal.is_admin and row.reporter != principal.subject):
        raise report_not_found(report_id)
    return row


def record_update(
    session: Session,
    row: SafetyReport,
    *,
    status: str,
    note: str | None,
    actor: Principal,
    action: str,
    now: datetime,
    ctx: RequestContext | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Move ``row`` to ``status`` (or keep it, with a note), and audit and announce it."""
    labels = repo.release_labels(session, [row.release_id])
    model, version = labels[row.release_id]
    before = announced_facts(row, model=model, version=version)
    previous = row.status
    row.status = status
    row.updated_at = now
    session.add(
        SafetyReportUpdate(
            report_id=row.id,
            at=now,
            status=status,
            previous_status=previous,
            note=note,
            actor=actor.subject,
        )
    )
    session.flush()
    after = announced_facts(row, model=model, version=version)
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action=action,
        target_type=REPORT,
        target_id=row.id,
        before=before,
        after=after,
        data={"note": note, **(extra or {})},
        ctx=ctx,
    )
    enqueue_event(
        session,
        event_type="safety.report.updated",
        data={
            **after,
            "previous_status": previous,
            "note": note,
            "by": actor.subject,
            "at": now.isoformat(),
        },
        report_text=report_text(row),
        now=now,
    )


def withdraw(
    session: Session,
    *,
    principal: Principal,
    report_id: int,
    note: str | None,
    now: datetime,
    ctx: RequestContext | None = None,
) -> SafetyReport:
    """The reporter takes their report back: it stops counting towards any policy (a hold it
    helped place stays until an admin resumes)."""
    row = repo.report_for_update(session, report_id)
    if row is None or row.reporter != principal.subject:
        raise report_not_found(report_id)
    if row.status not in OPEN_STATUSES:
        raise Conflict(
            f"safety report {report_id} is {row.status}; only an open report (new or "
            "triaged) can be withdrawn",
            code="report_closed",
        )
    record_update(
        session,
        row,
        status="withdrawn",
        note=note,
        actor=principal,
        action="safety.report.withdrawn",
        now=now,
        ctx=ctx,
    )
    return row
