"""Recording audit events.

Appends lock the single ``audit_head`` row, so events from every replica form one chain:
each stores the hash of the one before. The lock is held only until the surrounding
transaction commits, which keeps the event and the change it describes atomic.

Ids are handed out from the head too (``last_id + 1``) rather than from a sequence: a
sequence skips values when a transaction rolls back, while ids taken under the head's lock
are gap-free, so :mod:`app.audit.verify` can name the exact id of a deleted event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.audit.chain import GENESIS, event_hash, fields_hash
from app.context import RequestContext
from app.models import AuditEvent, AuditHead

_LOCKED = "audit_head_locked_in"


def _current_transaction(session: Session) -> object:
    return session.get_nested_transaction() or session.get_transaction()


def _held_head(session: Session) -> AuditHead | None:
    """The head, if this very transaction has locked it already (and so holds it current).

    Keyed by the innermost transaction, so a rolled-back savepoint (which drops its row locks
    on PostgreSQL) never leaves us believing we hold the lock."""
    cached = session.info.get(_LOCKED)
    txn = _current_transaction(session)
    if txn is not None and cached is not None and cached[0] is txn:
        head: AuditHead = cached[1]
        return head
    return None


def _head(session: Session) -> AuditHead:
    held = _held_head(session)
    if held is not None:
        return held
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
    session.info[_LOCKED] = (_current_transaction(session), found)
    return found


@dataclass(frozen=True)
class NewEvent:
    """An event to append: what happened, by whom, to what."""

    now: datetime
    actor: str
    action: str
    target_type: str = ""
    target_id: str | int = ""
    outcome: str = "ok"
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    ctx: RequestContext | None = None

    def fields(self, id: int) -> dict[str, Any]:
        """The row's hashed fields, as the database will hand them back."""
        return {
            "id": id,
            # UTC at microsecond precision, as stored.
            "at": self.now.astimezone(UTC),
            "actor": self.actor,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": str(self.target_id),
            "outcome": self.outcome,
            "before": self.before,
            "after": self.after,
            "data": self.data or {},
            "client_addr": self.ctx.client_addr if self.ctx else None,
            "request_id": self.ctx.request_id if self.ctx else None,
        }


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
    spec = NewEvent(now, actor, action, target_type, target_id, outcome, before, after, data, ctx)
    head = _head(session)
    event = AuditEvent(**spec.fields(head.last_id + 1), prev_hash=head.last_hash, hash="")
    # Every hashed field is known before the INSERT (the id comes from the head), so the
    # row is written once, complete.
    event.hash = event_hash(event, head.last_hash)
    head.last_id = event.id
    head.last_hash = event.hash
    session.add(event)
    if flush:
        session.flush()
    return event


# Built once: record_many runs for every batch of downloads.
_LOCK_HEAD = (
    select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
)
_SET_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(last_id=bindparam("b_id"), last_hash=bindparam("b_hash"))
)
_INSERT_EVENTS = insert(cast(Table, AuditEvent.__table__))


def record_many(session: Session, events: Sequence[NewEvent]) -> None:
    """Append ``events``, in order, in the session's transaction: one head lock, one
    multi-row INSERT and one head update, whatever their number, and no ORM objects."""
    if not events:
        return
    held = _held_head(session)
    conn = session.connection()
    if held is not None:
        session.flush()  # events this transaction recorded but had not sent yet go first
        last_id, last_hash = held.last_id, held.last_hash
    else:
        locked = conn.execute(_LOCK_HEAD).first()
        if locked is None:  # no head row yet: let the ORM path create it
            held = _head(session)
            last_id, last_hash = held.last_id, held.last_hash
        else:
            last_id, last_hash = int(locked[0]), str(locked[1])
    rows: list[dict[str, Any]] = []
    for spec in events:
        row = spec.fields(last_id + 1)
        row["prev_hash"] = last_hash
        row["hash"] = fields_hash(row, last_hash)
        rows.append(row)
        last_id, last_hash = row["id"], row["hash"]
    conn.execute(_INSERT_EVENTS, rows)
    conn.execute(_SET_HEAD, {"b_id": last_id, "b_hash": last_hash})
    if held is not None:
        # The ORM's copy must not write its old values back over the ones just set.
        set_committed_value(held, "last_id", last_id)
        set_committed_value(held, "last_hash", last_hash)
