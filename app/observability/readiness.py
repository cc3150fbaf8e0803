"""Readiness that rides out a short blip of the database or the object store.

Every replica depends on the same database and the same bucket. If ``/readyz`` failed on
the first error, a few seconds of database failover would take every pod out of the
Service at once: the load balancer would then refuse all traffic, including requests that
need neither (``/healthz``, cached JWKS, the console's static files), and the outage would
last until probes succeed again, several periods after the database is back. So a
dependency that has answered before and then fails keeps the replica ready for a grace
period (``WEIGHTGATE_READY_GRACE_SECONDS``, default 30), reported as ``degraded``; requests
that need it fail with their own errors meanwhile. A longer outage, or a replica that never
reached its dependencies, is not ready.

Checks run in threads, one at a time per dependency (a hung one is not started again), and
``/readyz`` waits for them at most ``WEIGHTGATE_READY_CHECK_TIMEOUT_SECONDS``: a dependency
that has not answered by then counts as failing, and the probe still gets its answer before
its own timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.clock import Clock


@dataclass
class _Dependency:
    check: Callable[[], None]
    ever_ok: bool = False
    failing_since: datetime | None = None
    running: asyncio.Future[None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Report:
    ready: bool
    # Per dependency: "ok", or "failing since <ISO time>".
    states: dict[str, str]
    # The dependencies that make the replica unready, in the order they were given.
    down: list[str]

    @property
    def status(self) -> str:
        if not self.ready:
            return "unavailable"
        return "ready" if all(s == "ok" for s in self.states.values()) else "degraded"


class Readiness:
    def __init__(
        self,
        checks: Mapping[str, Callable[[], None]],
        *,
        clock: Clock,
        grace_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self._deps = {name: _Dependency(check) for name, check in checks.items()}
        self._clock = clock
        self._grace = timedelta(seconds=grace_seconds)
        self._timeout = timeout_seconds

    async def probe(self) -> Report:
        for dep in self._deps.values():
            if dep.running is None or dep.running.done():
                dep.running = asyncio.ensure_future(self._run(dep))
        running = [d.running for d in self._deps.values() if d.running is not None]
        await asyncio.wait(running, timeout=self._timeout)
        now = self._clock.now()
        for dep in self._deps.values():
            if dep.running is not None and not dep.running.done() and dep.failing_since is None:
                dep.failing_since = now  # hung: failing until it answers
        return self._report(now)

    async def _run(self, dep: _Dependency) -> None:
        try:
            await asyncio.to_thread(dep.check)
        except Exception:  # any error of the driver or the store means "failing"
            if dep.failing_since is None:
                dep.failing_since = self._clock.now()
            return
        dep.ever_ok = True
        dep.failing_since = None

    def _report(self, now: datetime) -> Report:
        states: dict[str, str] = {}
        down: list[str] = []
        for name, dep in self._deps.items():
            if dep.failing_since is None and dep.ever_ok:
                states[name] = "ok"
                continue
            since = dep.failing_since or now
            states[name] = f"failing since {since.isoformat().replace('+00:00', 'Z')}"
            if not dep.ever_ok or now - since >= self._grace:
                down.append(name)
        return Report(ready=not down, states=states, down=down)
