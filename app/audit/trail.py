"""Reading the log: pages of events, newest first, as the API shows them. What the console
reads (the audit page, a principal's trail) goes through here, never the repository."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.audit import repository as repo
from app.audit.repository import AuditFilter
from app.audit.schemas import AuditEventOut

__all__ = ["AuditFilter", "events_about", "events_page"]


def events_page(
    session: Session, flt: AuditFilter, *, before_id: int | None, limit: int
) -> list[AuditEventOut]:
    """Events matching ``flt``, newest first, ids strictly below ``before_id``: one statement."""
    rows = repo.events_page(session, flt, before_id=before_id, limit=limit)
    return [AuditEventOut.model_validate(r) for r in rows]


def events_about(
    session: Session, target_type: str, target_id: int | str, *, before_id: int | None, limit: int
) -> list[AuditEventOut]:
    """What was done to one thing (a user, a partner): the events whose target it is."""
    flt = AuditFilter(target_type=target_type, target_id=str(target_id))
    return events_page(session, flt, before_id=before_id, limit=limit)
