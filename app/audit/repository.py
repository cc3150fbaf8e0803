"""Every audit query lives here (appends are in :mod:`app.audit.service`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from app.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    # A model id: events about the model, its releases and components (their target ids are
    # "ns/name", "ns/name@version", "ns/name@version/component").
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def events_page(
    session: Session, flt: AuditFilter, *, before_id: int | None, limit: int
) -> Sequence[AuditEvent]:
    """Newest first; ``before_id`` is the keyset cursor (ids strictly below it)."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    if flt.action is not None:
        if flt.action.endswith(".*"):
            q = q.where(AuditEvent.action.startswith(flt.action[:-1], autoescape=True))
        else:
            q = q.where(AuditEvent.action == flt.action)
    if flt.actor is not None:
        q = q.where(AuditEvent.actor == flt.actor)
    if flt.target_type is not None:
        q = q.where(AuditEvent.target_type == flt.target_type)
    if flt.target_id is not None:
        q = q.where(AuditEvent.target_id == flt.target_id)
    if flt.model is not None:
        q = q.where(
            or_(
                AuditEvent.target_id == flt.model,
                AuditEvent.target_id.startswith(flt.model + "@", autoescape=True),
            )
        )
    if flt.since is not None:
        q = q.where(AuditEvent.at >= flt.since)
    if flt.until is not None:
        q = q.where(AuditEvent.at < flt.until)
    return session.scalars(q).all()


def events_of(
    session: Session,
    *,
    actors: Sequence[str],
    target: tuple[str, str] | None = None,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEvent]:
    """Newest first: what ``actors`` did, and what was done to ``target`` (type, id). One
    principal's own trail (a partner's activity), each branch served by its own index."""
    cond: ColumnElement[bool] = AuditEvent.actor.in_(actors)
    if target is not None:
        cond = or_(
            cond, and_(AuditEvent.target_type == target[0], AuditEvent.target_id == target[1])
        )
    q = select(AuditEvent).where(cond).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    return session.scalars(q).all()
