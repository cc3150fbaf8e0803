"""The quota counters: fixed-window totals in the database, shared by every replica.

Charges are ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, atomic on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import QuotaCounter


def _core(session: Session, stmt: Any, params: Any) -> Any:
    # Core execution on the session's connection: these statements map no objects.
    return session.connection().execute(stmt, params)


@cache
def _charge(dialect: str) -> Any:
    """The counter charge for one dialect, built once."""
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Parameters named after the columns: SQLAlchemy then sends many rows in one statement
    # ("insertmanyvalues") and hands back their RETURNING rows in parameter order.
    counter = ins(QuotaCounter)
    return counter.on_conflict_do_update(
        index_elements=["key", "window_start"],
        set_={"amount": QuotaCounter.amount + counter.excluded.amount},
    ).returning(QuotaCounter.amount, sort_by_parameter_order=True)


Counter = tuple[str, datetime]  # (key, window start)


def add_to_counters(session: Session, amounts: Mapping[Counter, int]) -> dict[Counter, int]:
    """Add to many fixed-window counters, in one round trip; each window's new total.

    Rows are written in key order, so concurrent batches lock them in the same order.
    """
    if not amounts:
        return {}
    ordered = sorted(amounts.items())
    params = [{"key": k, "window_start": w, "amount": a} for (k, w), a in ordered]
    stmt = _charge(session.get_bind().dialect.name)
    totals = _core(session, stmt, params).scalars().all()
    return {counter: int(total) for (counter, _), total in zip(ordered, totals, strict=True)}


_REFUND = (
    update(QuotaCounter)
    .where(QuotaCounter.key == bindparam("b_key"), QuotaCounter.window_start == bindparam("b_w"))
    .values(amount=QuotaCounter.amount - bindparam("b_amount"))
    .execution_options(synchronize_session=False)
)


def add_to_counter(session: Session, key: str, window_start: datetime, amount: int) -> int:
    """Add ``amount`` to one fixed-window counter; the window's new total."""
    return add_to_counters(session, {(key, window_start): amount})[(key, window_start)]


def take_from_counters(session: Session, amounts: Mapping[Counter, int]) -> None:
    """Undo part of :func:`add_to_counters` (charges refused after all) in this transaction."""
    params = [{"b_key": k, "b_w": w, "b_amount": a} for (k, w), a in amounts.items() if a]
    if params:
        _core(session, _REFUND, params)


def drop_old_windows(session: Session, key: str, before: datetime) -> None:
    session.execute(
        delete(QuotaCounter).where(QuotaCounter.key == key, QuotaCounter.window_start < before)
    )
