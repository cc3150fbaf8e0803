"""The admin's audit page: the log, newest first, filtered by actor, model, event type and
time range (the API's filters), and the hash chain's verification on request (it reads
every event, so it is not run on each page view)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.audit.trail import AuditFilter, events_page
from app.audit.verify import verify_chain
from app.console.security import PREFIX
from app.console.session import AdminSession
from app.console.templating import local_instant, render
from app.db import SessionDep
from app.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
Text = Annotated[str, Query(max_length=193)]


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
    flt = AuditFilter(
        actor=actor.strip() or None,
        model=model.strip() or None,
        action=action.strip() or None,
        since=local_instant(since, request),
        until=local_instant(until, request),
    )
    rows = events_page(
        session, flt, before_id=decode_cursor(cursor) if cursor else None, limit=PAGE + 1
    )
    events = rows[:PAGE]
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
