"""On SQLite, a bounded number of requests inside the app at once; the others wait in the
event loop, before they take a thread.

Every SQLite transaction takes the database's write lock when it begins (``BEGIN
IMMEDIATE``, see app.db), and a route with sync dependencies runs them and its body on
separate threadpool threads, awaiting a free thread between steps while its transaction —
and so the lock — stays open. When a burst fills the threadpool (40 threads) with requests
blocked on that lock or on a pooled connection, the request holding the lock waits for a
thread to run its next step, and nothing moves until ``busy_timeout`` (30 s) fails the
waiters with 500s: 50 ``huggingface_hub`` clients arriving together did exactly that
(tests/e2e/test_stampede.py). With at most :data:`LIMIT` requests inside, the threads (and
the connection pool, 15) always have room for the one holding the lock; the wait that
remains is the queue SQLite imposes anyway, one writer at a time.

A slot is freed when the response starts, so a streamed file body does not hold one. The
probes (/healthz, /readyz, /metrics) are never held back. PostgreSQL has no database-wide
lock: no gate there.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Below the connection pool's 15 (app.db) less the batch writer and the background loops,
# far below the threadpool's 40.
LIMIT = 10
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


class SqliteGate:
    def __init__(self, app: ASGIApp, *, limit: int = LIMIT) -> None:
        self.app = app
        self._limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(limit)

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: an app may outlive the loop it first ran on (test clients).
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._slots = loop, asyncio.Semaphore(self._limit)
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _PROBES:
            await self.app(scope, receive, send)
            return
        slots = self._semaphore()
        await slots.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def send_then_release(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_then_release)
        finally:
            release()
