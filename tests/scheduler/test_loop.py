"""The scheduler pass and loop: batches, reminders, metrics, the app lifespan, and the guard
that keeps SQLite to one scheduler."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import FixedClock
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.models import Transition, WebhookDelivery
from app.schedule.loop import (
    SchedulerAlreadyRunning,
    SqliteSchedulerLock,
    run_scheduler,
    scheduler_pass,
)
from app.settings import Settings
from app.storage.filesystem import FilesystemStore
from tests.conftest import T0
from tests.factories.schedules import make_component, make_release, make_subscription
from tests.fixtures.databases import fresh_database
from tests.fixtures.receiver import webhook_receiver


def lag_count() -> float:
    return REGISTRY.get_sample_value("weightgate_scheduler_lag_seconds_count") or 0.0


def test_a_pass_drains_every_batch_records_lag_and_sends_reminders(
    db: Session, clock: FixedClock, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    now = clock.now()
    make_subscription(db, now, events=["embargo.lifted", "embargo.upcoming"])
    _, rel = make_release(db, now)
    for i in range(7):
        make_component(db, now, release=rel, stages=[("open", now - timedelta(seconds=i))])
    make_component(db, now, release=rel, stages=[("open", now + timedelta(hours=2))])
    db.commit()
    before = lag_count()
    tuned = settings.model_copy(update={"scheduler_batch": 3})

    recorded = scheduler_pass(
        session_factory, clock=clock, settings=tuned, replica="unit", reminders=False
    )
    assert db.scalars(select(WebhookDelivery.event_type)).all() == ["embargo.lifted"] * 7
    assert scheduler_pass(session_factory, clock=clock, settings=tuned, replica="unit") == 0

    assert recorded == 7
    assert lag_count() - before == 7
    assert db.scalar(select(func.count()).select_from(Transition)) == 7
    kinds = db.scalars(select(WebhookDelivery.event_type)).all()
    assert sorted(kinds) == ["embargo.lifted"] * 7 + ["embargo.upcoming"]


def test_the_loop_runs_until_stopped_and_wakes_the_delivery_loop(
    db: Session, clock: FixedClock, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    now = clock.now()
    _, rel = make_release(db, now)
    make_component(db, now, release=rel, stages=[("open", now)])
    db.commit()

    async def scenario() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        fast = settings.model_copy(update={"scheduler_interval": 0.01})
        task = asyncio.create_task(
            run_scheduler(
                session_factory, clock=clock, settings=fast, stop=stop, wake_deliveries=wake
            )
        )
        await asyncio.wait_for(wake.wait(), timeout=10)
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(scenario())
    assert db.scalar(select(func.count()).select_from(Transition)) == 1


def test_sqlite_lock_admits_one_scheduler_per_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wg.db'}"
    first, second = SqliteSchedulerLock(url), SqliteSchedulerLock(url)
    first.acquire()
    with pytest.raises(SchedulerAlreadyRunning, match="single-process"):
        second.acquire()
    first.release()
    second.acquire()  # free again once the holder is gone
    second.release()
    assert SqliteSchedulerLock("sqlite:///:memory:").path is None


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, kind="sqlite", label="loop") as url:
        yield url


def background_app(url: str, tmp_path: Path, clock: FixedClock, name: str) -> TestClient:
    settings = Settings(
        environment="test",
        data_dir=tmp_path / name,
        database_url=url,
        scheduler_enabled=True,
        scheduler_interval=0.05,
        webhook_allow_private=True,
        _env_file=None,
    )
    app = create_app(settings, clock=clock, store=FilesystemStore(tmp_path / "objects"))
    return TestClient(app)


def test_the_app_runs_the_scheduler_and_webhooks_in_its_lifespan(
    tmp_path: Path, sqlite_url: str
) -> None:
    clock = FixedClock(T0)
    engine = make_engine(sqlite_url)
    with webhook_receiver() as receiver, make_sessionmaker(engine)() as db:
        make_subscription(db, T0, url=receiver.url, events=["embargo.lifted"])
        _, rel = make_release(db, T0, model="acme/live")
        make_component(db, T0, release=rel, name="weights", stages=[("open", T0)])
        db.commit()
        with background_app(sqlite_url, tmp_path, clock, "a"):
            assert receiver.wait_for(lambda got: len(got) == 1 and bool(got[0].status), timeout=20)
            # A second server with a scheduler on the same SQLite file refuses to start.
            with (
                pytest.raises(SchedulerAlreadyRunning),
                background_app(sqlite_url, tmp_path, clock, "b"),
            ):
                pass
        (got,) = receiver.snapshot()
        body = json.loads(got.body)
        assert body["type"] == "embargo.lifted"
        assert body["data"]["model"] == "acme/live"
        assert got.headers["x-weightgate-event"] == "embargo.lifted"
        assert db.scalar(select(WebhookDelivery.status)) == "delivered"
    engine.dispose()
