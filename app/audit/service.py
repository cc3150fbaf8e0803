"""Recording audit events.

Appends lock the single ``audit_head`` row, so events from every replica form one chain:
each stores the hash of the one before. The lock is held only until the surrounding
transaction commits, which keeps the event and the change it describes atomic.

Ids are handed out from the head too (``last_id + 1``) rather than from a sequence: a
sequence skips values when a transaction rolls back, while ids taken under the head's lock
are gap-free, so :mod:`app.audit.verify` can name the exact id of a deleted event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from app.audit import repository
from app.audit.chain import GENESIS, fields_hash
from app.context import RequestContext
from app.models import AuditEvent, AuditHead


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
        """The row's hashed fields, as the database will hand them back: fitted to their
        columns (:func:`storable`), so a refusal is recorded whatever the caller sent."""
        ctx = self.ctx
        return {
            "id": id,
            # UTC at microsecond precision, as stored.
            "at": self.now.astimezone(UTC),
            "actor": storable(self.actor, 64),
            "action": storable(self.action, 64),
            "target_type": storable(self.target_type, 32),
            "target_id": storable(str(self.target_id), 256),
            "outcome": storable(self.outcome, 32),
            "before": storable(self.before),
            "after": storable(self.after),
            "data": storable(self.data or {}),
            "client_addr": storable(ctx.client_addr, 64) if ctx else None,
            "request_id": storable(ctx.request_id, 64) if ctx else None,
        }


_NUL = "\x00"


def storable(value: Any, limit: int | None = None) -> Any:
    """``value`` as every database can store it: NUL (which PostgreSQL refuses in text and
    JSON) replaced with U+FFFD in every string, however nested, and a column's text cut to
    its ``limit``. Most values pass unchanged; only strings are copied, and only when they
    need it."""
    if isinstance(value, str):
        if _NUL in value:
            value = value.replace(_NUL, "\ufffd")
        return value if limit is None or len(value) <= limit else value[:limit]
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


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
    """Append one event to the chain in the session's transaction; the row as written (a
    detached copy: the session does not track audit events)."""
    spec = NewEvent(now, actor, action, target_type, target_id, outcome, before, after, data, ctx)
    (row,) = record_many(session, [spec])
    return AuditEvent(**row)


# Built once: record_many runs for every batch of downloads.
_LOCK_HEAD = (
    select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
)
_SET_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(last_id=bindparam("b_id"), last_hash=bindparam("b_hash"))
)
_NEW_HEAD = insert(AuditHead).values(id=1, last_id=0, last_hash=GENESIS)
_INSERT_EVENTS = insert(cast(Table, AuditEvent.__table__))
# On PostgreSQL a batch's rows travel as one JSON document that the server unpacks: psycopg
# adapts every parameter in Python and its executemany sends one INSERT per row, which for a
# batch of downloads was most of the database step's client CPU.
_COLUMNS = (
    "id bigint, at timestamptz, actor text, action text, target_type text, target_id text, "
    "outcome text, before json, after json, data json, client_addr text, request_id text, "
    "prev_hash text, hash text"
)
_NAMES = ", ".join(c.split()[0] for c in _COLUMNS.split(", "))


def insert_events_sql(rows: str) -> str:
    """The INSERT of a JSON document of rows (:func:`rows_json`), whose placeholder is
    ``rows``: SQLAlchemy's ``:rows`` here, psycopg's ``%s`` in :mod:`app.delivery.pg_batch`."""
    return (
        f"INSERT INTO audit_events ({_NAMES}) SELECT {_NAMES} "  # noqa: S608 (constants)
        f"FROM json_to_recordset(CAST({rows} AS json)) AS r({_COLUMNS})"
    )


_INSERT_EVENTS_JSON = text(insert_events_sql(":rows"))


def record_many(session: Session, events: Sequence[NewEvent]) -> list[dict[str, Any]]:
    """Append ``events``, in order, in the session's transaction: one head lock, one
    multi-row INSERT and one head update, whatever their number. The rows as written.

    Core statements on the session's connection, read fresh every time: the head is never
    cached, so a rolled-back savepoint (whose row lock and head update are undone with it)
    can never leave a stale head behind to fork the chain.
    """
    if not events:
        return []
    conn = session.connection()
    locked = conn.execute(_LOCK_HEAD).first()
    if locked is None:  # the migration seeds the head; a database without one starts it
        conn.execute(_NEW_HEAD)
        locked = conn.execute(_LOCK_HEAD).one()
    rows = chain((int(locked[0]), str(locked[1])), events)
    if conn.dialect.name == "postgresql":
        conn.execute(_INSERT_EVENTS_JSON, {"rows": rows_json(rows)})
    else:
        conn.execute(_INSERT_EVENTS, rows)
    conn.execute(_SET_HEAD, {"b_id": rows[-1]["id"], "b_hash": rows[-1]["hash"]})
    return rows


Head = tuple[int, str]  # (last id, last hash)


def chain(head: Head, events: Sequence[NewEvent]) -> list[dict[str, Any]]:
    """The rows that append ``events`` after ``head``: ids and hashes, in order."""
    last_id, last_hash = head
    rows: list[dict[str, Any]] = []
    for spec in events:
        row = spec.fields(last_id + 1)
        row["prev_hash"] = last_hash
        row["hash"] = fields_hash(row, last_hash)
        rows.append(row)
        last_id, last_hash = row["id"], row["hash"]
    return rows


def rows_json(rows: Sequence[dict[str, Any]]) -> str:
    """``rows`` as the JSON document :func:`insert_events_sql` unpacks. No ``default=``:
    whatever SQLAlchemy's JSON type would refuse is refused here too."""
    return json.dumps([{**row, "at": row["at"].isoformat()} for row in rows])


# What the audit API and the console read: the routes call the service, not the repository.
AuditFilter = repository.AuditFilter


def events_page(
    session: Session, flt: AuditFilter, *, before_id: int | None, limit: int
) -> Sequence[AuditEvent]:
    """Events matching ``flt``, newest first, below the keyset cursor ``before_id``."""
    return repository.events_page(session, flt, before_id=before_id, limit=limit)
