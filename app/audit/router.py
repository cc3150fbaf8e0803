"""The audit API: admins read events (filtered, newest first) and check the hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditEventOut, ChainVerification
from app.audit.verify import Anchor, verify_chain
from app.auth.dependencies import AdminDep
from app.db import SessionDep
from app.errors import Unprocessable, problems
from app.ids import MAX_ROW_ID
from app.instants import Instant
from app.pagination import Page, PageDep, encode_cursor

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", responses=problems(401, 403, 422))
def list_events(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    action: Annotated[
        str | None,
        Query(max_length=64, description="exact action, or a prefix ending in '.*'"),
    ] = None,
    actor: Annotated[str | None, Query(max_length=64, description="e.g. user:3")] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=256)] = None,
    model: Annotated[
        str | None,
        Query(
            max_length=193,
            description="events about this model, its releases and components",
            examples=["acme/atlas-7b"],
        ),
    ] = None,
    since: Annotated[Instant | None, Query(description="events at or after")] = None,
    until: Annotated[Instant | None, Query(description="events strictly before")] = None,
) -> Page[AuditEventOut]:
    """Audit events, newest first, filtered by action, actor, target and time."""
    flt = service.AuditFilter(
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        model=model,
        since=since,
        until=until,
    )
    rows = service.events_page(session, flt, before_id=page.after, limit=page.limit + 1)
    items = [AuditEventOut.model_validate(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.get("/verify", responses=problems(401, 403, 422), response_model_exclude_none=True)
def verify(
    session: SessionDep,
    _: AdminDep,
    since_id: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_ROW_ID,
            description="verify only after this event: a last_id recorded earlier",
        ),
    ] = None,
    since_hash: Annotated[
        str | None,
        Query(pattern=r"^[0-9a-f]{64}$", description="the last_hash recorded with since_id"),
    ] = None,
) -> ChainVerification:
    """Walk the chain; name the first event that was edited, deleted or cut off. With
    ``since_id`` and ``since_hash`` (a ``last_id``/``last_hash`` recorded earlier), only the
    events after that one are read, and it must still be the one recorded."""
    if (since_id is None) != (since_hash is None):
        raise Unprocessable(
            "give since_id and since_hash together (a last_id and last_hash recorded earlier)",
            code="incomplete_anchor",
        )
    since = None if since_id is None or since_hash is None else Anchor(since_id, since_hash)
    report = verify_chain(session, since=since)
    return ChainVerification(
        ok=report.ok,
        events=report.events,
        last_id=report.last_id,
        last_hash=report.last_hash,
        since_id=since_id,
        first_bad=report.first_bad,
        reason=report.reason,
    )
