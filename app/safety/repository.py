"""Every query of the safety domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import (
    Model,
    Partner,
    Release,
    SafetyPolicy,
    SafetyReport,
    SafetyReportComponent,
    SafetyReportUpdate,
    User,
)
from app.safety.schemas import SEVERITIES


def severity_rank(column: Any) -> ColumnElement[int]:
    """A severity column as its rank (0 = low), for comparisons in SQL."""
    return case({s.value: s.rank for s in SEVERITIES}, value=column, else_=-1)


def report(session: Session, report_id: int) -> SafetyReport | None:
    return session.get(SafetyReport, report_id)


def report_for_update(session: Session, report_id: int) -> SafetyReport | None:
    return session.scalar(
        select(SafetyReport).where(SafetyReport.id == report_id).with_for_update()
    )


@dataclass(frozen=True)
class QueueFilter:
    reporter: str | None = None
    model_id: int | None = None
    statuses: Sequence[str] = ()
    severities: Sequence[str] = ()
    min_severity_rank: int | None = None
    category: str | None = None
    component_id: int | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None


def reports_page(
    session: Session, *, where: QueueFilter, after: int | None, limit: int, newest_first: bool
) -> list[SafetyReport]:
    """A keyset page of reports by id (oldest first unless ``newest_first``)."""
    query = select(SafetyReport)
    if where.reporter is not None:
        query = query.where(SafetyReport.reporter == where.reporter)
    if where.model_id is not None:
        query = query.where(SafetyReport.model_id == where.model_id)
    if where.statuses:
        query = query.where(SafetyReport.status.in_(where.statuses))
    if where.severities:
        query = query.where(SafetyReport.severity.in_(where.severities))
    if where.min_severity_rank is not None:
        query = query.where(severity_rank(SafetyReport.severity) >= where.min_severity_rank)
    if where.category is not None:
        query = query.where(SafetyReport.category == where.category)
    if where.component_id is not None:
        query = query.where(
            SafetyReport.id.in_(
                select(SafetyReportComponent.report_id).where(
                    SafetyReportComponent.component_id == where.component_id
                )
            )
        )
    if where.created_before is not None:
        query = query.where(SafetyReport.created_at < where.created_before)
    if where.created_after is not None:
        query = query.where(SafetyReport.created_at >= where.created_after)
    if after is not None:
        query = query.where(SafetyReport.id < after if newest_first else SafetyReport.id > after)
    order = SafetyReport.id.desc() if newest_first else SafetyReport.id
    return list(session.scalars(query.order_by(order).limit(limit)))


def updates_for(session: Session, report_ids: Iterable[int]) -> dict[int, list[SafetyReportUpdate]]:
    ids = sorted(set(report_ids))
    out: dict[int, list[SafetyReportUpdate]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = session.scalars(
        select(SafetyReportUpdate)
        .where(SafetyReportUpdate.report_id.in_(ids))
        .order_by(SafetyReportUpdate.id)
    )
    for row in rows:
        out[row.report_id].append(row)
    return out


def release_labels(session: Session, release_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """``release id → (model id "ns/name", version)``."""
    ids = sorted(set(release_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Release.id, Model.namespace, Model.name, Release.version)
        .join(Model, Model.id == Release.model_id)
        .where(Release.id.in_(ids))
    )
    return {rid: (f"{ns}/{name}", version) for rid, ns, name, version in rows}


def reporter_names(session: Session, reports: Sequence[SafetyReport]) -> dict[str, str]:
    """``subject → email or partner name`` of the reports' reporters."""
    uids = {r.user_id for r in reports if r.user_id is not None}
    pids = {r.partner_id for r in reports if r.partner_id is not None}
    out: dict[str, str] = {}
    if uids:
        for uid, email in session.execute(select(User.id, User.email).where(User.id.in_(uids))):
            out[f"user:{uid}"] = email
    if pids:
        for pid, pname in session.execute(
            select(Partner.id, Partner.name).where(Partner.id.in_(pids))
        ):
            out[f"partner:{pid}"] = pname
    return out


def policy(session: Session, model_id: int) -> SafetyPolicy | None:
    return session.get(SafetyPolicy, model_id)
