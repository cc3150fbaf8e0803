"""A bounded number of requests inside the app at once; the others wait in the event loop,
before they take a thread or a database connection.

A route with sync dependencies runs them and its body on separate threadpool threads,
awaiting a free thread between steps while its session — a pooled connection, and on
SQLite the database's write lock (every transaction begins ``IMMEDIATE``, see app.db) —
stays held. When a burst fills the threadpool (40 threads) with requests blocked on that
lock or on the connection pool, the requests holding them wait for a thread to run their
next step, and nothing moves until ``busy_timeout`` or the pool's timeout (30 s) fails the
waiters with 500s: 50 ``huggingface_hub`` clients did exactly that on SQLite
(tests/e2e/test_stampede.py), 300 on PostgreSQL with two workers (bench/stampede.py). With
fewer requests inside than the pool has connections, the threads and connections always
have room for the ones holding them.

A slot is freed when the response starts, so a streamed file body does not hold one. The
probes (/healthz, /readyz, /metrics) are never held back, and token redemptions
(``/v1/files``, the fast path) neither: they decide in one thread hop and batch their
writes (app/delivery/group_commit.py), so they hold no connection while waiting, and their
batches grow with the requests arriving together.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Below the connection pool (SQLite 15, PostgreSQL 30: app.db) less the batch writer and the
# background loops, below the threadpool's 40.
SQLITE_LIMIT = 10
POSTGRESQL_LIMIT = 24
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
_EXEMPT_PREFIXES = ("/v1/files/",)


class RequestGate:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
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
        if (
            scope["type"] != "http"
            or scope["path"] in _PROBES
            or scope["path"].startswith(_EXEMPT_PREFIXES)
        ):
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
