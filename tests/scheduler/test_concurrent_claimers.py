"""Claimers in separate processes, each with its own connection, racing over one database.

These create their own PostgreSQL database (SKIP LOCKED and real row locks are the point),
so they run, on PostgreSQL, in both passes of the suite. The killed-claimer test also runs
on SQLite, where the same guarantee (uncommitted work stays due) comes from the file lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from app.audit.verify import verify_chain
from app.db import make_engine, make_sessionmaker
from app.models import AuditEvent, Component, Stage, Transition, WebhookDelivery
from app.schedule.claimer import claim_due_transitions
from tests.conftest import T0
from tests.factories.schedules import make_release, make_subscription
from tests.fixtures.databases import ROOT, fresh_database


def seed_due_stages(engine: Engine, n: int) -> None:
    """``n`` components, each with one stage due at T0 (spread over the last minute)."""
    with make_sessionmaker(engine)() as db:
        make_subscription(db, T0, events=["embargo.lifted"])
        _, rel = make_release(db, T0, model="acme/many")
        db.execute(
            insert(Component),
            [{"release_id": rel.id, "name": f"c{i:04d}", "created_at": T0} for i in range(n)],
        )
        ids = db.scalars(select(Component.id).where(Component.release_id == rel.id)).all()
        db.execute(
            insert(Stage),
            [
                {
                    "component_id": cid,
                    "tier": "open",
                    "at": T0 - timedelta(milliseconds=60 * i),
                    "created_at": T0,
                }
                for i, cid in enumerate(ids)
            ],
        )
        db.commit()


def assert_each_recorded_once(db: Session, n: int) -> None:
    assert db.scalar(select(func.count()).select_from(Transition)) == n
    assert db.scalar(select(func.count(func.distinct(Transition.stage_id)))) == n
    assert db.scalar(select(func.count()).where(Stage.transitioned_at.is_(None))) == 0
    lifted = db.scalars(select(AuditEvent.data).where(AuditEvent.action == "embargo.lifted")).all()
    assert len(lifted) == n
    assert len({d["stage_id"] for d in lifted}) == n
    assert db.scalar(select(func.count()).select_from(WebhookDelivery)) == n
    assert db.scalar(select(func.count(func.distinct(WebhookDelivery.event_id)))) == n
    report = verify_chain(db)
    assert report.ok, report
    assert report.events == n


def claimer(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.scheduler.claimers", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


pytestmark = pytest.mark.own_database


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, kind="postgresql", label="claim") as url:
        yield url


def test_eight_claimer_processes_record_a_thousand_lifts_exactly_once(
    pg_url: str, tmp_path: Path
) -> None:
    engine = make_engine(pg_url)
    seed_due_stages(engine, 1000)
    go = tmp_path / "go"
    procs = [claimer("drain", pg_url, T0.isoformat(), f"claimer-{i}", str(go)) for i in range(8)]
    time.sleep(0.5)  # let them import and connect; they all start together on "go"
    go.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0
        results.append(json.loads(out.decode().strip().splitlines()[-1]))

    assert sum(r["claimed"] for r in results) == 1000
    # They really ran side by side: the work was split, not done by one of them.
    assert sum(1 for r in results if r["claimed"]) >= 2, results
    with make_sessionmaker(engine)() as db:
        assert_each_recorded_once(db, 1000)
        by_replica = dict(
            db.execute(
                select(Transition.recorded_by, func.count()).group_by(Transition.recorded_by)
            ).all()
        )
    assert by_replica == {r["replica"]: r["claimed"] for r in results if r["claimed"]}
    engine.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_claimer_killed_before_commit_leaves_its_lifts_due_for_another(
    kind: str, tmp_path: Path
) -> None:
    with fresh_database(tmp_path, kind=kind, label="kill") as url:
        engine = make_engine(url)
        seed_due_stages(engine, 40)
        doomed = claimer("hold", url, T0.isoformat(), "doomed")
        try:
            assert doomed.stdout is not None
            assert doomed.stdout.readline().strip() == b"40"  # updated, inserted, not committed
            sessions = make_sessionmaker(engine)
            if kind == "postgresql":
                # While it holds the rows, another claimer skips them instead of waiting.
                with sessions() as db:
                    assert claim_due_transitions(db, now=T0, replica="survivor", limit=100) == []
                    db.rollback()
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(10)
            recorded = 0
            deadline = time.monotonic() + 30
            while recorded < 40 and time.monotonic() < deadline:
                with sessions() as db:
                    got = claim_due_transitions(db, now=T0, replica="survivor", limit=100)
                    db.commit()
                recorded += len(got)
                time.sleep(0.05)
            assert recorded == 40
            with sessions() as db:
                assert_each_recorded_once(db, 40)
                assert set(db.scalars(select(Transition.recorded_by))) == {"survivor"}
        finally:
            if doomed.poll() is None:
                doomed.kill()
                doomed.wait(10)
            if doomed.stdout is not None:
                doomed.stdout.close()
            engine.dispose()
