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
    Component,
    Model,
    Partner,
    Release,
    SafetyHold,
    SafetyPolicy,
    SafetyReport,
    SafetyReportComponent,
    SafetyReportUpdate,
    User,
)
from app.safety.schemas import OPEN_STATUSES, SEVERITIES


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


def component_for_update(session: Session, component_id: int) -> Component | None:
    """The component row-locked until commit, and re-read: a copy loaded before the lock
    was granted (the filer's access check) may predate another transaction's hold."""
    return session.scalar(
        select(Component)
        .where(Component.id == component_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def policy_hold_for_stage(session: Session, stage_id: int) -> SafetyHold | None:
    return session.scalar(select(SafetyHold).where(SafetyHold.stage_id == stage_id))


def counting_reports(session: Session, *, component_id: int, min_rank: int) -> list[SafetyReport]:
    """Open reports on the component of at least the severity ranked ``min_rank``, oldest
    first."""
    return list(
        session.scalars(
            select(SafetyReport)
            .join(SafetyReportComponent, SafetyReportComponent.report_id == SafetyReport.id)
            .where(
                SafetyReportComponent.component_id == component_id,
                SafetyReport.status.in_(OPEN_STATUSES),
                severity_rank(SafetyReport.severity) >= min_rank,
            )
            .order_by(SafetyReport.id)
        )
    )


def components_to_judge(session: Session, *, model_id: int | None = None) -> list[int]:
    """Components not held, in published releases of models whose policy is on, with an
    open report: all the policy could hold now (the sweep looks at these)."""
    query = (
        select(SafetyReportComponent.component_id)
        .join(SafetyReport, SafetyReport.id == SafetyReportComponent.report_id)
        .join(Component, Component.id == SafetyReportComponent.component_id)
        .join(Release, Release.id == Component.release_id)
        .join(SafetyPolicy, SafetyPolicy.model_id == Release.model_id)
        .where(
            SafetyPolicy.enabled.is_(True),
            SafetyReport.status.in_(OPEN_STATUSES),
            Component.held_at.is_(None),
            Release.status == "published",
        )
        .distinct()
    )
    if model_id is not None:
        query = query.where(Release.model_id == model_id)
    return sorted(session.scalars(query))


def policy_holds(session: Session, component_ids: Iterable[int]) -> dict[int, SafetyHold]:
    """The latest policy hold of each component."""
    ids = sorted(set(component_ids))
    out: dict[int, SafetyHold] = {}
    if ids:
        for row in session.scalars(
            select(SafetyHold).where(SafetyHold.component_id.in_(ids)).order_by(SafetyHold.id)
        ):
            out[row.component_id] = row
    return out
