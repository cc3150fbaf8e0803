"""GroupCommit: requests arriving while a batch runs share the next one; every caller gets
its own result or error (per item); a batch whose shared work fails (per batch) is split, and
each of its requests is run again alone, so only a request that fails alone gets an error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from app.delivery.group_commit import GroupCommit

pytestmark = pytest.mark.no_database


class Recorder:
    """A batch function that records its batches and can be held open by the test."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail_batch: int | None = None
        self.poison: int | None = None  # any batch holding this item raises

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.release.wait(5)
        self.batches.append(list(items))
        if self.fail_batch is not None and len(self.batches) - 1 == self.fail_batch:
            raise RuntimeError("database gone")
        if self.poison in items:
            raise OverflowError(f"item {self.poison} broke the batch")
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def test_requests_arriving_during_a_batch_share_the_next_one() -> None:
    run = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(run, max_batch=64)

    async def scenario() -> list[int | str]:
        run.release.clear()
        first = asyncio.ensure_future(batches.submit(0))
        await asyncio.sleep(0.05)  # the first batch, [0], is now running (and held)
        rest = [asyncio.ensure_future(batches.submit(i)) for i in range(2, 12, 2)]
        await asyncio.sleep(0.05)
        run.release.set()
        out: list[int | str] = []
        for f in [first, *rest]:
            out.append(await f)
        return out

    results = asyncio.run(scenario())
    assert results == [0, 20, 40, 60, 80, 100]
    assert run.batches == [[0], [2, 4, 6, 8, 10]]


def test_each_caller_gets_its_own_error_and_a_failed_batch_fails_only_its_callers() -> None:
    run = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(run, max_batch=64)

    async def scenario() -> None:
        assert await batches.submit(4) == 40
        with pytest.raises(ValueError, match="odd 3"):
            await batches.submit(3)
        run.fail_batch = len(run.batches)
        with pytest.raises(RuntimeError, match="database gone"):
            await batches.submit(6)
        assert await batches.submit(8) == 80  # the next batch runs normally

    asyncio.run(scenario())


async def _together(batches: GroupCommit[int, int], items: list[int]) -> list[int | str]:
    """Submit ``items`` at once (one batch) and collect each caller's result or error."""
    out = await asyncio.gather(*(batches.submit(i) for i in items), return_exceptions=True)
    return [r if isinstance(r, int) else f"{type(r).__name__}: {r}" for r in out]


def test_a_per_item_failure_is_that_callers_alone_and_the_batch_is_not_run_again() -> None:
    run = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(run, max_batch=64)
    assert asyncio.run(_together(batches, [2, 3, 4])) == [20, "ValueError: odd 3", 40]
    assert run.batches == [[2, 3, 4]]


def test_a_per_batch_failure_caused_by_one_item_fails_only_that_item() -> None:
    run = Recorder()
    run.poison = 13
    batches: GroupCommit[int, int] = GroupCommit(run, max_batch=64)
    items = [2, 4, 13, 6, 8]
    assert asyncio.run(_together(batches, items)) == [
        20,
        40,
        "OverflowError: item 13 broke the batch",
        60,
        80,
    ]
    # The batch failed as a whole, then each item ran alone, in arrival order.
    assert run.batches == [items, [2], [4], [13], [6], [8]]


def test_a_transient_per_batch_failure_is_retried_item_by_item_and_everyone_is_served() -> None:
    run = Recorder()
    run.fail_batch = 0
    batches: GroupCommit[int, int] = GroupCommit(run, max_batch=64)
    assert asyncio.run(_together(batches, [2, 4, 6])) == [20, 40, 60]
    assert run.batches == [[2, 4, 6], [2], [4], [6]]


def test_a_run_that_returns_the_wrong_number_of_results_is_a_per_batch_failure() -> None:
    def short(items: Sequence[int]) -> list[int | BaseException]:
        out: list[int | BaseException] = [i * 10 for i in items]
        return out[:1]

    batches: GroupCommit[int, int] = GroupCommit(short, max_batch=64)
    assert asyncio.run(_together(batches, [2, 4])) == [20, 40]


def test_batches_never_exceed_the_maximum() -> None:
    run = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(run, max_batch=3)

    async def scenario() -> list[int]:
        return list(await asyncio.gather(*(batches.submit(i) for i in range(0, 16, 2))))

    assert asyncio.run(scenario()) == [i * 10 for i in range(0, 16, 2)]
    assert max(len(b) for b in run.batches) == 3
    assert [i for b in run.batches for i in b] == list(range(0, 16, 2))  # arrival order


def test_a_new_event_loop_starts_afresh() -> None:
    # The test client runs each session on its own loop; the batcher must not wait on
    # a drain task that belonged to a loop that is gone.
    run = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(run, max_batch=8)
    assert asyncio.run(batches.submit(2)) == 20
    assert asyncio.run(batches.submit(4)) == 40
    assert run.batches == [[2], [4]]
