"""Recording audit events.

Appends lock the single ``audit_head`` row, so events from every replica form one chain:
each stores the hash of the one before. The lock is held only until the surrounding
transaction commits, which keeps the event and the change it describes atomic.

Ids are handed out from the head too (``last_id + 1``) rather than from a sequence: a
sequence skips values when a transaction rolls back, while ids taken under the head's lock
are gap-free, so :mod:`app.audit.verify` can name the exact id of a deleted event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, event_hash
from app.context import RequestContext
from app.models import AuditEvent, AuditHead

_LOCKED = "audit_head_locked_in"


def _head(session: Session) -> AuditHead:
    # Already locked (and current) in this very transaction: no need to ask again. Keyed by
    # the innermost transaction, so a rolled-back savepoint (which drops its row locks on
    # PostgreSQL) never leaves us believing we hold the lock.
    txn = session.get_nested_transaction() or session.get_transaction()
    cached = session.info.get(_LOCKED)
    if txn is not None and cached is not None and cached[0] is txn:
        head: AuditHead = cached[1]
        return head
    # populate_existing: with expire_on_commit off, a head loaded by an earlier transaction
    # of the same session would otherwise come back stale and fork the chain.
    found = session.scalar(
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if found is None:
        found = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(found)
        session.flush()
    session.info[_LOCKED] = (session.get_nested_transaction() or session.get_transaction(), found)
    return found


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
    flush: bool = True,
) -> AuditEvent:
    """Append one event to the chain in the session's transaction.

    ``flush=False`` leaves the INSERT to the caller's next flush, so a caller recording many
    events (the scheduler) sends them in one batch; the chain is the same either way.
    """
    head = _head(session)
    event = AuditEvent(
        id=head.last_id + 1,
        # Hash what the database will hand back: UTC at microsecond precision.
        at=now.astimezone(UTC),
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
    # Every hashed field is known before the INSERT (the id comes from the head), so the
    # row is written once, complete.
    event.hash = event_hash(event, head.last_hash)
    head.last_id = event.id
    head.last_hash = event.hash
    session.add(event)
    if flush:
        session.flush()
    return event
