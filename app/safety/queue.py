"""Listing reports: a reporter's own, a model's, and the admins' triage queue, one keyset
page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.catalogue import repository as catalogue_repo
from app.catalogue.names import split_model_id
from app.catalogue.visibility import model_not_found
from app.models import Model, SafetyReport
from app.safety import repository as repo
from app.safety.repository import QueueFilter
from app.safety.schemas import Category, Severity


def admin_model(session: Session, namespace: str, name: str) -> Model:
    """A model by id for an admin route (drafts and unannounced ones included)."""
    model = catalogue_repo.model_by_id(session, namespace, name)
    if model is None:
        raise model_not_found(namespace, name)
    return model


def own_reports(
    session: Session,
    *,
    reporter: str,
    model_id: int | None = None,
    statuses: Sequence[str] = (),
    after: int | None,
    limit: int,
    newest_first: bool,
) -> list[SafetyReport]:
    """``reporter``'s own reports, optionally on one model."""
    where = QueueFilter(reporter=reporter, model_id=model_id, statuses=statuses)
    return repo.reports_page(
        session, where=where, after=after, limit=limit, newest_first=newest_first
    )


def model_reports(
    session: Session,
    *,
    model_id: int,
    statuses: Sequence[str],
    after: int | None,
    limit: int,
) -> list[SafetyReport]:
    """Every report on the model, oldest first (admins)."""
    where = QueueFilter(model_id=model_id, statuses=statuses)
    return repo.reports_page(session, where=where, after=after, limit=limit, newest_first=False)


def triage_queue(
    session: Session,
    *,
    now: datetime,
    model: str | None,
    statuses: Sequence[str],
    severities: Sequence[Severity],
    min_severity: Severity | None,
    category: Category | None,
    older_than_hours: int | None,
    newer_than_hours: int | None,
    after: int | None,
    limit: int,
    newest_first: bool,
) -> list[SafetyReport]:
    model_id = None
    if model is not None:
        model_id = admin_model(session, *split_model_id(model)).id
    where = QueueFilter(
        model_id=model_id,
        statuses=statuses,
        severities=[s.value for s in severities],
        min_severity_rank=min_severity.rank if min_severity else None,
        category=category.value if category else None,
        created_before=now - timedelta(hours=older_than_hours) if older_than_hours else None,
        created_after=now - timedelta(hours=newer_than_hours) if newer_than_hours else None,
    )
    return repo.reports_page(
        session, where=where, after=after, limit=limit, newest_first=newest_first
    )
