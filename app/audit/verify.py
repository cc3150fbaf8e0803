"""Checking the audit chain end to end: edited, deleted and truncated events.

The walk reads events in id order, in batches, and checks for each one that

- its id is the next one (ids are gap-free, see :mod:`app.audit.service`), else the
  missing id was deleted;
- its ``prev_hash`` is the hash of the event before it, else a neighbour was edited and
  re-hashed, or the row was moved;
- its own content still hashes to its ``hash``, else it was edited;

and finally that the last event is the one ``audit_head`` points at, else the tail was cut
off (or rows were appended without going through :func:`app.audit.record`).

What it cannot see: someone who rewrites the head *and* every event after the one they
changed. Operators who need that covered record ``last_hash`` somewhere the database's
writers cannot reach (docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, event_hash
from app.models import AuditEvent, AuditHead

BATCH = 2000


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int  # events checked (after the anchor, when there is one)
    last_id: int
    last_hash: str
    first_bad: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Anchor:
    """A point of the chain recorded earlier (``last_id``/``last_hash`` of a verification)."""

    id: int
    hash: str


def verify_chain(
    session: Session, *, batch: int = BATCH, since: Anchor | None = None
) -> ChainReport:
    """Walk the chain from the start, or from ``since``: then only the events after it are
    read, and the anchor event itself must still be the one recorded (same hash, content
    unchanged). What that cannot see is an event before the anchor edited in place; a full
    walk now and then does."""
    head = session.execute(
        select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1)
    ).first()
    head_id, head_hash = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    table = AuditEvent.__table__
    after, prev_hash = 0, GENESIS
    if since is not None:
        bad = _check_anchor(session, since, head_id=head_id)
        if bad is not None:
            return ChainReport(False, 0, head_id, head_hash, bad[0], bad[1])
        after, prev_hash = since.id, since.hash
    count = 0
    while True:
        # Plain rows, not ORM objects: nothing piles up in the session on a long log.
        events = session.execute(
            select(table).where(table.c.id > after).order_by(table.c.id).limit(batch)
        ).all()
        if not events:
            break
        for event in events:
            bad = _check(event, expected_id=after + 1, prev_hash=prev_hash, head_id=head_id)
            if bad is not None:
                return ChainReport(False, count, head_id, head_hash, bad[0], bad[1])
            after, prev_hash, count = event.id, event.hash, count + 1
    if after != head_id or prev_hash != head_hash:
        if after < head_id:
            reason = (
                f"the log ends at event {after} but the chain head says {head_id}: "
                f"events {after + 1}..{head_id} were deleted (tail truncated)"
            )
        else:
            reason = "the last event's hash is not the chain head's (head or tail rewritten)"
        return ChainReport(False, count, head_id, head_hash, after + 1, reason)
    return ChainReport(True, count, head_id, head_hash)


def _check_anchor(session: Session, since: Anchor, *, head_id: int) -> tuple[int, str] | None:
    if since.id == 0:
        return (
            None if since.hash == GENESIS else (0, "event 0 is the genesis: its hash is 64 zeros")
        )
    if since.id > head_id:
        return head_id + 1, (
            f"the anchor (event {since.id}) lies beyond the chain head ({head_id}): "
            "the log was cut back since it was recorded"
        )
    table = AuditEvent.__table__
    event = session.execute(select(table).where(table.c.id == since.id)).first()
    if event is None:
        return since.id, f"event {since.id}, the anchor, is missing (deleted)"
    if event.hash != since.hash:
        return since.id, (
            f"event {since.id} is not the one recorded: its hash is no longer the anchor's "
            "(it, or the chain before it, was rewritten)"
        )
    return _edited(event)


def _check(event: Any, *, expected_id: int, prev_hash: str, head_id: int) -> tuple[int, str] | None:
    if event.id > head_id:
        return event.id, (
            f"event {event.id} lies beyond the chain head ({head_id}): written outside the "
            "audit service"
        )
    if event.id != expected_id:
        missing = (
            f"event {expected_id} is"
            if event.id == expected_id + 1
            else f"events {expected_id}..{event.id - 1} are"
        )
        return expected_id, f"{missing} missing (deleted); the chain resumes at {event.id}"
    if event.prev_hash != prev_hash:
        return event.id, (
            f"event {event.id} does not link to the event before it (prev_hash mismatch): "
            "that event or this one was altered"
        )
    return _edited(event)  # its prev_hash is the one expected (checked just above)


def _edited(event: Any) -> tuple[int, str] | None:
    if event_hash(event, event.prev_hash) != event.hash:
        return event.id, f"event {event.id} was edited: its content no longer matches its hash"
    return None
