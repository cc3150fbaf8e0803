"""The scheduler loop each replica runs, and the guard that keeps SQLite to one of them.

Every ``scheduler_interval`` seconds a pass records due lifts in batches (each batch its own
short transaction, see :mod:`app.schedule.claimer`) and then sends due reminders. Several
replicas run this loop against one PostgreSQL database; SQLite has no row locks and one
writer, so there the process holds an exclusive lock file next to the database for as long
as its scheduler runs, and a second scheduler refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.clock import Clock
from app.observability.metrics import (
    SCHEDULER_TICKS,
    TRANSITIONS_RECORDED,
    observe_scheduler_lag,
)
from app.schedule.claimer import claim_due_transitions
from app.schedule.reminders import remind_expiring_credentials, remind_upcoming_lifts
from app.settings import Settings

log = logging.getLogger(__name__)

# One pass records at most this many batches, so reminders and shutdown are never starved.
_MAX_BATCHES_PER_PASS = 50
# Reminders announce dates hours or days ahead: looking for them every pass would only add
# queries, so the loop does it at most this often.
_REMINDER_EVERY_SECONDS = 30.0


def replica_name(settings: Settings) -> str:
    return settings.replica_name or f"{socket.gethostname()}:{os.getpid()}"


class SchedulerAlreadyRunning(RuntimeError):
    """Another process already runs the scheduler on this SQLite database."""


class SqliteSchedulerLock:
    """An exclusive ``flock`` on ``<database>.scheduler.lock``; the kernel drops it when the
    process ends, however it ends, so a crash never leaves a stale lock behind."""

    def __init__(self, database_url: str) -> None:
        database = make_url(database_url).database
        self.path = (
            Path(f"{database}.scheduler.lock") if database and database != ":memory:" else None
        )
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            fh.close()
            raise SchedulerAlreadyRunning(
                f"another process already runs the scheduler on this SQLite database "
                f"(lock {self.path}); SQLite is single-process: run one server, or use "
                "PostgreSQL for several replicas (or set WEIGHTGATE_SCHEDULER_ENABLED=false "
                "here)"
            ) from e
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def scheduler_pass(
    sessions: sessionmaker[Session],
    *,
    clock: Clock,
    settings: Settings,
    replica: str,
    reminders: bool = True,
) -> int:
    """Record every due lift (batch by batch), then (if ``reminders``) send due reminders.
    Returns how many lifts this pass recorded. Blocking: run it in a worker thread."""
    recorded = 0
    for _ in range(_MAX_BATCHES_PER_PASS):
        with sessions() as session:
            transitions = claim_due_transitions(
                session, now=clock.now(), replica=replica, limit=settings.scheduler_batch
            )
            session.commit()
        for t in transitions:
            lag = (t.recorded_at - t.at).total_seconds()
            observe_scheduler_lag(lag)
            TRANSITIONS_RECORDED.inc()
            log.info(
                "schedule.lifted",
                extra={
                    "transition_id": t.id,
                    "stage_id": t.stage_id,
                    "component_id": t.component_id,
                    "tier": t.tier,
                    "lag_seconds": round(lag, 3),
                },
            )
        recorded += len(transitions)
        if len(transitions) < settings.scheduler_batch:
            break
    if not reminders:
        return recorded
    with sessions() as session:
        now = clock.now()
        remind_upcoming_lifts(
            session, now=now, before=timedelta(seconds=settings.reminder_before_seconds)
        )
        remind_expiring_credentials(
            session,
            now=now,
            before=timedelta(seconds=settings.credentials_reminder_before_seconds),
        )
        session.commit()
    return recorded


async def run_scheduler(
    sessions: sessionmaker[Session],
    *,
    clock: Clock,
    settings: Settings,
    stop: asyncio.Event,
    wake_deliveries: asyncio.Event,
) -> None:
    """Until ``stop``: a pass every ``scheduler_interval`` seconds."""
    replica = replica_name(settings)
    log.info("schedule.started", extra={"replica": replica})
    reminded = -_REMINDER_EVERY_SECONDS
    while not stop.is_set():
        remind = time.monotonic() - reminded >= _REMINDER_EVERY_SECONDS
        try:
            recorded = await asyncio.to_thread(
                scheduler_pass,
                sessions,
                clock=clock,
                settings=settings,
                replica=replica,
                reminders=remind,
            )
            if remind:
                reminded = time.monotonic()
            SCHEDULER_TICKS.labels(outcome="ok").inc()
        except OperationalError as e:
            # SQLite answers "database is locked" when a request wrote between our read and
            # our write; PostgreSQL may drop a connection. Either way: try again next tick.
            SCHEDULER_TICKS.labels(outcome="error").inc()
            log.warning("schedule.pass_retry", extra={"error": type(e.orig).__name__})
            recorded = 0
        except Exception:
            SCHEDULER_TICKS.labels(outcome="error").inc()
            log.exception("schedule.pass_failed")
            recorded = 0
        if recorded:  # their webhooks need not wait for the delivery loop's next poll
            wake_deliveries.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.scheduler_interval)
    log.info("schedule.stopped", extra={"replica": replica})
