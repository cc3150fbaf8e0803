"""Recording audit events.

Appends lock the single ``audit_head`` row, so events from every replica form one chain:
each stores the hash of the one before. The lock is held only until the surrounding
transaction commits, which keeps the event and the change it describes atomic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, event_hash
from app.context import RequestContext
from app.models import AuditEvent, AuditHead


def _head(session: Session) -> AuditHead:
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    *,
    now: datetime,
    actor: str,
    action: str,
    target_type: str = "",
    target_id: str | int = "",
    outcome: str = "ok",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    ctx: RequestContext | None = None,
) -> AuditEvent:
    head = _head(session)
    event = AuditEvent(
        at=now,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        outcome=outcome,
        before=before,
        after=after,
        data=data or {},
        client_addr=ctx.client_addr if ctx else None,
        request_id=ctx.request_id if ctx else None,
        prev_hash=head.last_hash,
        hash="",
    )
    session.add(event)
    session.flush()  # assigns the id, which is part of the hash
    # Hash what the database will hand back: timestamps at microsecond precision, UTC.
    event.hash = event_hash(event, head.last_hash)
    head.last_id = event.id
    head.last_hash = event.hash
    session.flush()
    return event
