"""/readyz rides out a short database or store blip (every replica would see the same blip,
and taking them all out of the Service turns seconds of errors into an outage), reports it,
and gives up on readiness once the outage outlasts the grace period."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.clock import FixedClock
from app.main import create_app
from app.observability.readiness import Readiness
from app.settings import Settings
from app.storage import StorageError
from app.storage.filesystem import FilesystemStore
from tests.conftest import T0


class Switch:
    """A dependency check that fails while ``down`` is set."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("refused")


def readiness(clock: FixedClock, **checks: Switch) -> Readiness:
    return Readiness(checks, clock=clock, grace_seconds=30, timeout_seconds=2)


def test_a_blip_degrades_then_an_outage_makes_the_replica_unready() -> None:
    clock, db, store = FixedClock(T0), Switch(), Switch()
    r = readiness(clock, database=db, storage=store)
    ok = asyncio.run(r.probe())
    assert ok.ready
    assert ok.status == "ready"
    assert ok.states == {"database": "ok", "storage": "ok"}

    db.down = True
    blip = asyncio.run(r.probe())
    assert blip.ready
    assert blip.status == "degraded"
    assert blip.states == {"database": "failing since 2026-06-01T12:00:00Z", "storage": "ok"}

    clock.advance(29)
    assert asyncio.run(r.probe()).ready  # still the same blip: since T0, not since now
    clock.advance(1)
    outage = asyncio.run(r.probe())
    assert not outage.ready
    assert outage.down == ["database"]

    db.down = False
    back = asyncio.run(r.probe())
    assert back.ready
    assert back.status == "ready"


def test_a_replica_that_never_reached_its_dependencies_is_not_ready() -> None:
    clock, db, store = FixedClock(T0), Switch(), Switch()
    store.down = True
    report = asyncio.run(readiness(clock, database=db, storage=store).probe())
    assert not report.ready
    assert report.down == ["storage"]


def test_a_hung_check_is_not_waited_for_nor_started_twice() -> None:
    clock = FixedClock(T0)
    release = threading.Event()
    calls: list[int] = []

    def hangs() -> None:
        calls.append(1)
        release.wait(30)

    r = Readiness(
        {"database": Switch(), "storage": hangs}, clock=clock, grace_seconds=30, timeout_seconds=0.2
    )

    async def scenario() -> tuple[float, bool, bool]:
        # First answer: both fine once the check returns.
        release.set()
        first = await r.probe()
        release.clear()
        started = time.monotonic()
        second = await r.probe()  # hangs now: answered within the timeout anyway
        third = await r.probe()
        elapsed = time.monotonic() - started
        release.set()
        await asyncio.sleep(0.05)
        return elapsed, first.ready and second.ready and third.ready, len(calls) == 2

    elapsed, ready, started_twice_only = asyncio.run(scenario())
    assert elapsed < 1.5
    assert ready  # a hung store within the grace period: degraded, not out
    assert started_twice_only  # one call for the first probe, one (still hung) for the rest


class BreakableStore(FilesystemStore):
    broken = False

    def check(self) -> None:
        if self.broken:
            raise StorageError("object store unreachable")
        super().check()


def test_readyz_through_the_app(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    clock = FixedClock(T0)
    store = BreakableStore(tmp_path / "objects")
    app = create_app(settings, clock=clock, store=store, engine=engine, run_background=False)
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {
            "status": "ready",
            "database": "ok",
            "storage": "ok",
        }
        store.broken = True
        blip = client.get("/readyz")
        assert blip.status_code == 200
        assert blip.json() == {
            "status": "degraded",
            "database": "ok",
            "storage": "failing since 2026-06-01T12:00:00Z",
        }
        clock.advance(settings.ready_grace_seconds)
        outage = client.get("/readyz")
        assert outage.status_code == 503
        assert outage.headers["content-type"] == "application/problem+json"
        assert outage.json()["code"] == "storage_unreachable"
        store.broken = False
        assert client.get("/readyz").json()["status"] == "ready"
