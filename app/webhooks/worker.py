"""The delivery loop each replica runs: lease a batch, send it concurrently, record results.

Database work runs in worker threads (the ORM is synchronous); HTTP runs on the event loop,
so a slow receiver never holds a thread, a connection or a row lock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.clock import Clock
from app.observability.metrics import WEBHOOK_ATTEMPTS
from app.settings import Settings
from app.webhooks.delivery import (
    AttemptResult,
    DeliveryJob,
    claim_due_deliveries,
    record_attempt,
    send,
)
from app.webhooks.targets import OwnEndpoint, own_endpoint

log = logging.getLogger(__name__)

_OWN_ENDPOINT_TTL = 60.0


class DeliveryWorker:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._transport = transport
        self._own: OwnEndpoint = None
        self._own_checked = -_OWN_ENDPOINT_TTL

    def client(self) -> httpx.AsyncClient:
        # trust_env off: deliveries go straight to the checked address, never via a proxy
        # picked up from the environment (which would also defeat the address check).
        return httpx.AsyncClient(transport=self._transport, trust_env=False, follow_redirects=False)

    def _claim(self) -> list[DeliveryJob]:
        with self._sessions() as session:
            jobs = claim_due_deliveries(
                session,
                now=self._clock.now(),
                lease_seconds=self._settings.webhook_lease_seconds,
                limit=self._settings.webhook_batch,
            )
            session.commit()
        return jobs

    def _record(self, job: DeliveryJob, result: AttemptResult) -> str:
        with self._sessions() as session:
            outcome = record_attempt(
                session,
                job,
                result,
                now=self._clock.now(),
                settings=self._settings,
                rng=self._rng,
            )
            session.commit()
        return outcome

    async def _own_endpoint(self) -> OwnEndpoint:
        if time.monotonic() - self._own_checked > _OWN_ENDPOINT_TTL:
            self._own = await asyncio.to_thread(own_endpoint, self._settings)
            self._own_checked = time.monotonic()
        return self._own

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """Lease one batch of due deliveries and attempt each; returns how many."""
        jobs = await asyncio.to_thread(self._claim)
        if not jobs:
            return 0
        own = await self._own_endpoint()
        limit = asyncio.Semaphore(self._settings.webhook_concurrency)

        async def attempt(job: DeliveryJob) -> None:
            # The limit covers the write-back too: it bounds this loop's database sessions.
            async with limit:
                timestamp = int(self._clock.now().timestamp())
                result = await send(
                    client, job, settings=self._settings, own=own, timestamp=timestamp
                )
                outcome = await asyncio.to_thread(self._record, job, result)
            WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
            log.info(
                "webhooks.attempt",
                extra={
                    "delivery_id": job.delivery_id,
                    "subscription_id": job.subscription_id,
                    "event_id": job.event_id,
                    "event_type": job.event_type,
                    "status_code": result.status_code,
                    "outcome": outcome,
                    "duration_ms": result.duration_ms,
                },
            )

        await asyncio.gather(*(attempt(job) for job in jobs))
        return len(jobs)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Until ``stop``: drain what is due, then wait for ``wake`` or the poll interval."""
        async with self.client() as client:
            while not stop.is_set():
                wake.clear()  # before the pass: a wake-up during it is kept for the wait
                try:
                    done = await self.run_once(client)
                except Exception:  # the loop must outlive a database hiccup
                    log.exception("webhooks.pass_failed")
                    done = 0
                if done >= self._settings.webhook_batch:
                    continue
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
                _, pending = await asyncio.wait(
                    waiters,
                    timeout=self._settings.scheduler_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in pending:
                    waiter.cancel()
