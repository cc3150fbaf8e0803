"""The safety policy's sweep: reports are judged when filed, but a component can come to
meet its model's policy later, with no new report: its next stage comes within the policy's
window, or a dismissed report is reopened. Each replica looks every
``safety_sweep_interval`` seconds at the components that could be held (open reports, a
policy on, not held) and judges each in its own short transaction, under the same row lock
as a filer (app/safety/policy.py), so replicas sweeping together hold a stage once."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.clock import Clock
from app.safety import policy
from app.safety import repository as repo
from app.settings import Settings

log = logging.getLogger(__name__)


def sweep_pass(sessions: sessionmaker[Session], *, clock: Clock) -> int:
    """Judge every component that could be held now; returns how many holds were placed."""
    with sessions() as session:
        candidates = repo.components_to_judge(session)
    placed = 0
    for component_id in candidates:
        with sessions() as session:
            holds = policy.evaluate(session, component_ids=[component_id], now=clock.now())
            session.commit()
        for hold in holds:
            placed += 1
            log.info(
                "safety.held",
                extra={
                    "component_id": hold.component_id,
                    "stage_id": hold.stage_id,
                    "reports": hold.reports,
                },
            )
    return placed


async def run_sweep(
    sessions: sessionmaker[Session],
    *,
    clock: Clock,
    settings: Settings,
    stop: asyncio.Event,
    wake_deliveries: asyncio.Event,
) -> None:
    """Until ``stop``: a sweep every ``safety_sweep_interval`` seconds."""
    while not stop.is_set():
        try:
            if await asyncio.to_thread(sweep_pass, sessions, clock=clock):
                wake_deliveries.set()  # component.held need not wait for the next poll
        except OperationalError as e:
            log.warning("safety.sweep_retry", extra={"error": type(e.orig).__name__})
        except Exception:
            log.exception("safety.sweep_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.safety_sweep_interval)
