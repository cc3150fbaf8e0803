"""Audit events and log lines for token issue, redemption and denial.

A denial must be on record although the request fails: :func:`record_denial` rolls back
whatever the request had done, appends the denial event and commits it on its own. That is
the one place in this domain where a service commits, and it is why.

Log lines carry ids (jti, subject, file), never a token, key or presigned URL.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app import audit
from app.audit import NewEvent
from app.context import RequestContext
from app.errors import AppError
from app.observability.metrics import count_token_issued, count_token_redeemed

log = logging.getLogger(__name__)


def record(
    session: Session,
    *,
    now: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    data: dict[str, Any],
    ctx: RequestContext | None,
) -> None:
    audit.record(
        session,
        now=now,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data,
        ctx=ctx,
    )
    log.info(action, extra={"actor": actor, "target": target_id, **_loggable(data)})
    _count(action, data)


_KIND = {"download.redeemed": "token", "download.anonymous": "anonymous"}


def _count(action: str, data: dict[str, Any]) -> None:
    # Prometheus counters (app/observability/metrics.py); denials are counted by the app's
    # error handler, so only successes are counted here.
    if action == "token.issued":
        count_token_issued(str(data.get("tier", "")))
    elif action in _KIND:
        count_token_redeemed(_KIND[action], str(data.get("mode", "")))


def record_denial(
    session: Session,
    *,
    now: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    error: AppError,
    data: dict[str, Any],
    ctx: RequestContext | None,
) -> None:
    session.rollback()
    details = {**data, "code": error.code, "status": error.status}
    audit.record(
        session,
        now=now,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome="denied",
        data=details,
        ctx=ctx,
    )
    session.commit()
    log.info(action, extra={"actor": actor, "target": target_id, **_loggable(details)})


def recorded(events: Sequence[NewEvent]) -> None:
    """Log and count a batch's events (successes and denials), once they are on record.

    Served downloads are logged at DEBUG: each already has its ``http.request`` line and its
    audit event, and a third record per download was a tenth of a redemption's CPU.
    Denials stay at INFO. Successes are counted per label set, once per batch."""
    debug = log.isEnabledFor(logging.DEBUG)
    served: Counter[tuple[str, str]] = Counter()
    for e in events:
        data = e.data or {}
        if e.outcome == "ok":
            if e.action in ("download.redeemed", "download.anonymous"):
                served[(e.action, str(data.get("mode", "")))] += 1
            else:
                _count(e.action, data)
            if not debug:
                continue
        log.log(
            logging.DEBUG if e.outcome == "ok" else logging.INFO,
            e.action,
            extra={"actor": e.actor, "target": e.target_id, **_loggable(data)},
        )
    for (action, mode), n in served.items():
        count_token_redeemed(_KIND[action], mode, n)


_LOGGED = frozenset(
    {"jti", "code", "status", "bytes", "range", "mode", "uses", "tier", "model", "version"}
)


def _loggable(data: dict[str, Any]) -> dict[str, Any]:
    # An allow-list: whatever is added to audit data later does not reach logs by accident.
    return {k: v for k, v in data.items() if k in _LOGGED}
