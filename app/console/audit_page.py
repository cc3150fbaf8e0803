"""The admin's audit page: the log, newest first, filtered by actor, model, event type and
time range (the API's filters), and the hash chain's verification on request (it reads
every event, so it is not run on each page view)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.audit import repository as audit_repo
from app.audit.schemas import AuditEventOut
from app.audit.verify import verify_chain
from app.console.security import PREFIX
from app.console.session import AdminSession
from app.console.templating import render, viewer_zone
from app.db import SessionDep
from app.errors import Unprocessable
from app.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
Text = Annotated[str, Query(max_length=193)]


def _local_instant(value: str, request: Request) -> datetime | None:
    """A ``datetime-local`` value, read in the viewer's zone (the form says which)."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise Unprocessable(f"{value!r} is not a date and time") from e
    if at.tzinfo is None:
        at = at.replace(tzinfo=viewer_zone(request) or UTC)
    return at.astimezone(UTC)


@router.get("/audit")
def audit(
    request: Request,
    admin: AdminSession,
    session: SessionDep,
    actor: Text = "",
    model: Text = "",
    action: Text = "",
    since: Text = "",
    until: Text = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    flt = audit_repo.AuditFilter(
        actor=actor.strip() or None,
        model=model.strip() or None,
        action=action.strip() or None,
        since=_local_instant(since, request),
        until=_local_instant(until, request),
    )
    rows = audit_repo.events_page(
        session, flt, before_id=decode_cursor(cursor) if cursor else None, limit=PAGE + 1
    )
    events = [AuditEventOut.model_validate(r) for r in rows[:PAGE]]
    query = {"actor": actor, "model": model, "action": action, "since": since, "until": until}
    return render(
        request,
        "audit.html",
        {
            "events": events,
            "filters": query,
            "next_cursor": encode_cursor(events[-1].id) if len(rows) > PAGE else None,
        },
    )


@router.get("/audit/verify")
def verify(request: Request, admin: AdminSession, session: SessionDep) -> Response:
    report = verify_chain(session, since=None)
    return render(request, "_verify.html", {"report": report})
