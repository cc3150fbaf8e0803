"""The PostgreSQL path of a batch of downloads (app/delivery/pg_batch.py): the same facts
as the generic path, and the same handling of database errors.

Every behaviour test of tests/delivery runs on PostgreSQL through this path; these pin down
what those cannot see: that its hand-written SQL reads exactly what the repositories' queries
read (so the two can never drift apart unnoticed), and how it fails.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS
from app.delivery import pg_batch, service
from app.delivery.batch_store import GenericBatch, PostgresBatch
from app.delivery.service import Redemption, Request
from app.models import AuditHead, Grant
from app.tokens.uses import Progress
from tests.delivery.test_batches import get, issue, settings_of
from tests.tokens.world import World

pytestmark = pytest.mark.postgresql


def test_both_paths_read_the_same_facts(world: World, db: Session) -> None:
    limited = issue(world, world.researcher, components=["config", "tokenizer"], max_uses=3)
    unlimited = issue(world, world.researcher, components=["config"])
    partner = issue(world, world.partner(), components=["weights", "config"])
    # A start to find, and a revoked grant next to the live one.
    started = service.redeem_batch(
        db, [get(world, limited, "config.json", range="bytes=0-9")], settings_of(world)
    )
    assert not isinstance(started[0], Exception)
    live = db.scalars(select(Grant).where(Grant.revoked_at.is_(None))).first()
    assert live is not None
    db.add(replace_grant(live, world))
    db.flush()
    requests: list[Request] = [
        get(world, limited, "config.json", range="bytes=10-19"),
        get(world, limited, "tokenizer.json"),
        get(world, unlimited, "config.json"),
        get(world, unlimited, "no-such-file.bin"),
        get(world, partner, "model.safetensors"),
        get(world, None, "tokenizer.json"),
        get(world, None, "config.json"),
        get(world, None, "config.json"),  # the same file again: looked up once
        get(world, None, "no-such-file.bin"),  # a release without that file
        elsewhere(get(world, None, "config.json"), version="v9"),  # no such release
        elsewhere(get(world, None, "config.json"), name="no-such-model"),
    ]

    generic = service._read(db, requests, store=GenericBatch(), async_commit=False)
    batched = service._read(db, requests, store=PostgresBatch(), async_commit=False)

    assert batched.tokens == generic.tokens
    assert len(batched.tokens) == 3
    assert batched.files == generic.files
    assert len(batched.files) == 3  # one is missing
    assert batched.open_files == generic.open_files
    assert [f is not None and f.file_sha256 is not None for f in batched.open_files.values()] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert [f is None for f in batched.open_files.values()] == [False] * 4 + [True] * 2
    assert batched.held == generic.held
    assert batched.held.grants
    assert batched.held.agreements
    assert batched.started == generic.started == {(limited.jti, "config.json"): Progress(1, 0)}
    assert batched.read.stages == generic.read.stages
    assert batched.read.stages


def elsewhere(request: Redemption, **address: str) -> Redemption:
    """``request`` for another version or model than the world's."""
    return replace(request, address=replace(request.address, **address))


def replace_grant(live: Grant, world: World) -> Grant:
    """A revoked grant of the same user on the same model (it must not count)."""
    return Grant(
        user_id=live.user_id,
        model_id=live.model_id,
        created_at=world.clock.now(),
        revoked_at=world.clock.now(),
    )


def test_a_failing_statement_is_a_database_error_without_its_parameters(db: Session) -> None:
    # redeem() retries a batch request by request on DBAPIError, and answers 503 for one
    # that fails alone: a psycopg error from here must arrive as one.
    with pytest.raises(DBAPIError) as caught:
        pg_batch.one(db, "SELECT length(%(addr)s) / 0", {"addr": "198.51.100.23"})
    assert "division by zero" in str(caught.value)
    assert "198.51.100.23" not in str(caught.value)


def test_the_read_sets_asynchronous_commit_for_its_transaction_only_when_asked(
    engine: Engine,
) -> None:
    def setting(session: Session) -> str:
        return str(session.execute(text("SHOW synchronous_commit")).scalar_one())

    def read(session: Session, async_commit: bool) -> None:
        pg_batch.read(
            session, [], user_ids=[], partner_ids=[], addresses=[], async_commit=async_commit
        )

    # A session of its own: the test's shared transaction would outlive SET LOCAL.
    with Session(engine) as session:
        before = setting(session)
        assert before != "off"
        read(session, True)
        assert setting(session) == "off"
        session.rollback()  # SET LOCAL: gone with the transaction
        assert setting(session) == before
        read(session, False)
        assert setting(session) == before
        session.rollback()


def test_a_database_without_an_audit_head_starts_one(db: Session) -> None:
    db.execute(text("DELETE FROM audit_events"))
    db.execute(text("DELETE FROM audit_head"))
    totals, head = pg_batch.lock(db, {})
    assert (totals, head) == ({}, (0, GENESIS))
    assert db.get(AuditHead, 1) is not None


def test_quota_counters_are_charged_and_returned_by_window(world: World, db: Session) -> None:
    settings = settings_of(world)
    claims = issue(world, world.researcher, components=["config"])
    request = get(world, claims, "config.json")
    ok = service.redeem_batch(db, [request, replace(request, method="GET")], settings)
    assert all(not isinstance(r, Exception) for r in ok)
    start = world.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    key = f"bytes:{claims.sub}"
    totals, _ = pg_batch.lock(db, {(key, start): 5})
    size = len(world.files["config.json"])
    assert totals == {(key, start): 2 * size + 5}
