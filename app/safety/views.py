"""Reports as their reporters see them and as admins see them, built in a constant number
of queries per page."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.models import SafetyReport
from app.safety import repository as repo
from app.safety.schemas import (
    AdminReportOut,
    AdminReportUpdateOut,
    Category,
    ReportOut,
    ReportUpdateOut,
    Severity,
)


def reporter_views(session: Session, rows: Sequence[SafetyReport]) -> list[ReportOut]:
    labels = repo.release_labels(session, [r.release_id for r in rows])
    updates = repo.updates_for(session, [r.id for r in rows])
    return [
        ReportOut(
            **_fields(r, labels[r.release_id]),
            updates=[
                ReportUpdateOut(
                    at=u.at,
                    status=u.status,
                    previous_status=u.previous_status,
                    note=u.note,
                )
                for u in updates[r.id]
            ],
        )
        for r in rows
    ]


def admin_views(session: Session, rows: Sequence[SafetyReport]) -> list[AdminReportOut]:
    labels = repo.release_labels(session, [r.release_id for r in rows])
    updates = repo.updates_for(session, [r.id for r in rows])
    names = repo.reporter_names(session, rows)
    return [
        AdminReportOut(
            **_fields(r, labels[r.release_id]),
            reporter=r.reporter,
            reporter_name=names.get(r.reporter, ""),
            triaged_at=r.triaged_at,
            updates=[
                AdminReportUpdateOut(
                    at=u.at,
                    status=u.status,
                    previous_status=u.previous_status,
                    note=u.note,
                    actor=u.actor,
                )
                for u in updates[r.id]
            ],
        )
        for r in rows
    ]


def _fields(r: SafetyReport, label: tuple[str, str]) -> dict[str, object]:
    model, version = label
    return {
        "id": r.id,
        "model": model,
        "version": version,
        "components": list(r.components),
        "category": Category(r.category),
        "severity": Severity(r.severity),
        "description": r.description,
        "evidence": r.evidence,
        "status": r.status,
        "duplicate_of": r.duplicate_of,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }
