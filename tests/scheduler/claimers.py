"""Claimer processes for the concurrency tests: ``python -m tests.scheduler.claimers``.

drain <url> <now> <replica> <go-file>   wait for <go-file>, claim until nothing is due,
                                        print {"replica", "claimed"} as JSON
hold <url> <now> <replica>              claim everything due, print the count, and never
                                        commit (the test kills the process)
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.pool import NullPool

from app.db import make_engine, make_sessionmaker
from app.models import Stage
from app.schedule.claimer import claim_due_transitions

BATCH = 25


def drain(url: str, now: datetime, replica: str, go: Path) -> int:
    engine = make_engine(url, poolclass=NullPool)
    sessions = make_sessionmaker(engine)
    while not go.exists():
        time.sleep(0.005)
    claimed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sessions() as session:
            got = claim_due_transitions(session, now=now, replica=replica, limit=BATCH)
            session.commit()
        claimed += len(got)
        if got:
            continue
        with sessions() as session:
            left = session.scalar(
                select(func.count()).select_from(Stage).where(Stage.transitioned_at.is_(None))
            )
        if not left:
            break
        time.sleep(0.01)  # the rest is locked by other claimers: wait for them to finish
    engine.dispose()
    return claimed


def hold(url: str, now: datetime, replica: str) -> None:
    engine = make_engine(url, poolclass=NullPool)
    session = make_sessionmaker(engine)()
    got = claim_due_transitions(session, now=now, replica=replica, limit=100_000)
    session.flush()
    print(len(got), flush=True)
    time.sleep(600)  # killed long before this


def main(argv: list[str]) -> None:
    command, url, now_text, replica, *rest = argv
    now = datetime.fromisoformat(now_text)
    if command == "drain":
        claimed = drain(url, now, replica, Path(rest[0]))
        print(json.dumps({"replica": replica, "claimed": claimed}), flush=True)
    elif command == "hold":
        hold(url, now, replica)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
