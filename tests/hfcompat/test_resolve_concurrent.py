"""``/resolve`` under real concurrency: a live server, with two worker processes on
PostgreSQL and with the one worker the embedded SQLite default allows.

Resolves are charged and recorded in the download batches (as ``/v1/files`` is), so
concurrent ones share transactions (on PostgreSQL, from two processes); this pins down that
they still add up: the day's bytes quota lets exactly as many through as it has room for, and
the audit chain holds one event per request. On SQLite it shows that the request's own read
and the batch's write, each taking the database's write lock, never wait on each other. The
test makes its own databases, so it runs once, in the PostgreSQL pass.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.audit.verify import verify_chain
from app.models import AuditEvent, Grant, Model, QuotaCounter, User
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import at_once, create_user, live_server, publish_over_http

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

SIZE = 4096
ROOM = 5  # downloads the day's quota has room for


def publish(url: str, admin_key: str) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    publish_over_http(
        url,
        admin_key,
        "acme/race",
        components={"weights": [("research", past)]},
        files={"w.bin": ("weights", b"w" * SIZE)},
    )


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_twenty_concurrent_resolves_share_the_quota_and_the_chain(
    tmp_path: Path, kind: str
) -> None:
    workers = 2 if kind == "postgresql" else 1  # `serve` refuses several workers on SQLite
    with fresh_database(tmp_path, kind=kind, label="hfrace") as db_url:
        env = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
            "WEIGHTGATE_QUOTA_BYTES_PER_DAY": str(ROOM * SIZE),
        }
        engine = create_engine(db_url)
        try:
            with live_server(env, tmp=tmp_path, workers=workers) as server:
                publish(server.url, create_user(server, "ops@example.org", "admin"))
                key = create_user(server, "ada@example.org")
                with Session(engine) as session, session.begin():
                    user_id = session.scalar(select(User.id).where(User.email == "ada@example.org"))
                    model_id = session.scalar(select(Model.id).where(Model.name == "race"))
                    assert user_id is not None
                    assert model_id is not None
                    session.add(
                        Grant(user_id=user_id, model_id=model_id, created_at=datetime.now(UTC))
                    )
                responses = at_once(
                    20,
                    lambda c: c.get(
                        server.url + "/acme/race/resolve/main/w.bin",
                        headers={"Authorization": f"Bearer {key}"},
                    ),
                )
            results = [
                (r.status_code, "ok" if r.content == b"w" * SIZE else r.json()["code"])
                for r in responses
            ]
            assert Counter(results) == {(200, "ok"): ROOM, (429, "quota_bytes"): 20 - ROOM}
            with Session(engine) as session:
                counted = session.scalars(select(QuotaCounter.amount)).all()
                outcomes = Counter(
                    session.scalars(
                        select(AuditEvent.outcome).where(AuditEvent.action == "hf.resolve")
                    ).all()
                )
                chain = verify_chain(session)
        finally:
            engine.dispose()
        # Only what was sent is counted; every request is on record, in one chain.
        assert counted == [ROOM * SIZE]
        assert outcomes == {"ok": ROOM, "denied": 20 - ROOM}
        assert chain.ok, chain.reason
