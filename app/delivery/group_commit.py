"""Group commit: concurrent requests share one database transaction.

A redemption's own work in the database is small (a few rows read, a counter bumped, an
audit event appended) but each one used to pay for a whole transaction: its round trips, a
durable commit, and the audit chain's head lock held until that commit, so downloads across
all replicas queued one fsync at a time. Here, requests that arrive while a batch is being
written wait for the next batch, and a batch is one transaction doing the set-based work of
all its requests (:func:`app.delivery.service.redeem_batch`). Nobody waits longer than one
batch, an idle server runs batches of one, and a busy one amortises every statement and the
commit over everyone who arrived in the meantime. This is how databases make their own log
flushes cheap; the same idea one level up.

Each request still gets its answer only after its batch has committed, so the guarantees of
one transaction per request hold: nothing is served that is not on record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


# How long a batch may wait for its company, at most, whatever the last batch took.
MAX_GATHER_SECONDS = 0.005


class GroupCommit(Generic[Item, Result]):
    """Runs ``run(items)`` in a worker thread, one call at a time per event loop, over
    everything submitted since the previous call began (at most ``max_batch`` items).

    When a batch ends, its callers answer their clients and the clients' next requests are
    a network round trip away: a batch started at once would hold only the first of them and
    make the rest wait for it. So, like PostgreSQL's ``commit_delay``, a batch smaller than
    the one before waits for company, but never longer than half the last batch's duration
    (and :data:`MAX_GATHER_SECONDS`); under light load batches of one start at once.

    ``run`` returns one result per item, in order; a result that is an exception is raised
    to that item's caller alone (a *per-item* failure: ``run`` decided that item could not be
    served, and the others were). If ``run`` itself raises (a *per-batch* failure: the shared
    work failed, for a cause that may lie in any one item or in none), the batch is split:
    each of its items is run again alone, so a request that makes a batch fail fails alone
    and its neighbours are served as if it had never come. An item whose lone run raises
    gets that exception.
    """

    def __init__(
        self, run: Callable[[Sequence[Item]], Sequence[Result | BaseException]], max_batch: int
    ) -> None:
        self._run = run
        self._max = max(1, max_batch)
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        # The event loop keeps only a weak reference to tasks: hold the drain task here.
        self._task: asyncio.Task[None] | None = None
        self._expect = 1  # the last batch's size: how many usually arrive together
        self._last_seconds = 0.0
        self._enough: asyncio.Event | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (the test client starts one per session): whatever the old
            # one left is unreachable, and its drain task is gone with it.
            self._loop, self._pending, self._draining, self._task = loop, [], False, None
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if self._enough is not None and len(self._pending) >= self._target():
            self._enough.set()
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    def _target(self) -> int:
        return min(self._expect, self._max)

    async def _gather(self) -> None:
        """Wait (briefly) until as many requests are pending as the last batch held."""
        wait = min(self._last_seconds / 2, MAX_GATHER_SECONDS)
        if len(self._pending) >= self._target() or wait <= 0:
            return
        self._enough = asyncio.Event()
        try:
            # Timing out is the normal end of a wait that found no company.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), wait)
        finally:
            self._enough = None

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await self._gather()
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                items = [item for item, _ in batch]
                started = loop.time()
                try:
                    results = await asyncio.to_thread(self._run_isolated, items)
                except BaseException as exc:  # cancelled, or the interpreter stopping
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    raise
                finally:
                    self._expect, self._last_seconds = len(batch), loop.time() - started
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the caller went away (client disconnected)
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False

    def _run_isolated(self, items: Sequence[Item]) -> Sequence[Result | BaseException]:
        """``run(items)``; if it raises, each item run alone (in the same worker thread)."""
        try:
            results = self._run(items)
            if len(results) != len(items):
                raise RuntimeError(f"{len(results)} results for {len(items)} items")
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.warning(
                "group_commit.batch_split",
                extra={"items": len(items), "error": type(exc).__name__},
            )
            return [self._alone(item) for item in items]
        return results

    def _alone(self, item: Item) -> Result | BaseException:
        try:
            return self._run([item])[0]
        except Exception as exc:
            return exc
