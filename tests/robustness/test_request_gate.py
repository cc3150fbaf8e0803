"""app.request_gate against a stand-in app: how many requests are inside at once, and when a
slot is given back (plain asyncio, no server: the burst itself is tests/e2e/test_stampede)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.request_gate import RequestGate

pytestmark = pytest.mark.no_database


class Recorder:
    """An ASGI app that counts who is inside, starts its response, then streams a while."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        await self.release.wait()
        self.inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.01)  # the body streams with the slot already given back
        await send({"type": "http.response.body", "body": b"ok"})


def scope(path: str = "/x") -> dict[str, Any]:
    return {"type": "http", "path": path, "method": "GET"}


async def noop(_: Any) -> None:
    return None


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


def test_at_most_the_limit_is_inside_and_the_rest_wait_their_turn() -> None:
    async def run() -> tuple[int, int]:
        app = Recorder()
        gate = RequestGate(app, limit=3)
        tasks = [asyncio.create_task(gate(scope(), receive, noop)) for _ in range(10)]
        await asyncio.sleep(0.05)
        waiting_inside = app.inside
        app.release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return waiting_inside, app.most

    inside, most = asyncio.run(run())
    assert (inside, most) == (3, 3)


def test_a_failed_request_gives_its_slot_back() -> None:
    async def boom(*_: Any) -> None:
        raise RuntimeError("the app failed")

    async def run() -> None:
        gate = RequestGate(boom, limit=1)
        for _ in range(3):  # each one gets in: the one before gave the slot back
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(gate(scope(), receive, noop), 1)

    asyncio.run(run())


def test_probes_and_redemptions_are_never_held_back() -> None:
    seen: list[str] = []

    async def app(scope: Any, *_: Any) -> None:
        seen.append(scope["path"])

    async def run() -> None:
        closed = RequestGate(app, limit=0)  # no slot at all: only the probes get through
        for path in ("/healthz", "/readyz", "/metrics", "/v1/files/a/b/v1/w.bin"):
            await asyncio.wait_for(closed(scope(path), receive, noop), 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(closed(scope("/v1/models"), receive, noop), 0.05)

    asyncio.run(run())
    assert seen == ["/healthz", "/readyz", "/metrics", "/v1/files/a/b/v1/w.bin"]
