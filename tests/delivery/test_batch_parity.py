"""The two batch stores (app/delivery/batch_store.py) on generated worlds: the PostgreSQL one
(hand-written SQL) and the generic one (the repositories' queries) must read the same facts,
answer the same and leave the database in the same state.

Each example changes the shared world (tests/tokens/world.py) inside a savepoint: tokens
revoked, past their expiry or at their max_uses, the grant revoked, the partner's agreement
ended or the partner disabled, components held or under a ceiling, quotas tight or already
spent; then runs one batch of generated requests through each store in turn, rolling back
between them, and compares. PostgreSQL only: the generic store runs there too, so the two
see one database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from app.delivery import service
from app.delivery.batch_store import BatchStore, GenericBatch, PostgresBatch
from app.delivery.service import Redemption, Request
from app.errors import AppError
from app.models import (
    AuditEvent,
    Component,
    Grant,
    IssuedToken,
    Partner,
    PartnerAgreement,
    QuotaCounter,
    TokenFileStart,
)
from app.tokens.claims import DownloadClaims
from tests.delivery.test_batches import get, issue, settings_of
from tests.tokens.world import FILES, World

pytestmark = pytest.mark.postgresql

HOUR = timedelta(hours=1)
PATHS = [*FILES, "no-such-file.bin"]
COMPONENTS = ["config", "tokenizer", "weights"]
MAX_USES = (2, None, 1, 1)  # of the tokens _tokens() issues


@dataclass(frozen=True)
class Tokens:
    """Issued once per test (issuing goes through the API), shared by every example."""

    claims: tuple[DownloadClaims, ...]


def _tokens(world: World) -> Tokens:
    return Tokens(
        (
            issue(world, world.researcher, components=["config", "tokenizer"], max_uses=2),
            issue(world, world.researcher, components=["config"]),
            issue(world, world.partner(), components=["weights", "config"], max_uses=1),
            issue(world, world.researcher, components=["tokenizer"], max_uses=1),
        )
    )


@dataclass(frozen=True)
class Change:
    revoked: frozenset[int]  # token indexes
    at_limit: frozenset[int]  # token indexes whose max_uses are all taken
    grant_revoked: bool
    agreement_ended: bool
    partner_disabled: bool
    held: frozenset[str]  # components
    ceilings: tuple[tuple[str, str], ...]  # (component, tier)
    bytes_per_day: int  # 0: off
    spent_today: int  # bytes already counted for the researcher today
    anonymous_per_minute: int


@dataclass(frozen=True)
class Ask:
    token: int | None  # index into Tokens, or anonymous
    path: str
    method: str
    range: str | None
    late: bool  # an hour on: every token has expired


changes = st.builds(
    Change,
    revoked=st.frozensets(st.integers(0, 3), max_size=2),
    at_limit=st.frozensets(st.sampled_from([0, 2, 3]), max_size=2),
    grant_revoked=st.booleans(),
    agreement_ended=st.booleans(),
    partner_disabled=st.booleans(),
    held=st.frozensets(st.sampled_from(COMPONENTS), max_size=2),
    ceilings=st.lists(
        st.tuples(st.sampled_from(COMPONENTS), st.sampled_from(["partner", "research"])),
        max_size=2,
        unique_by=lambda c: c[0],
    ).map(tuple),
    bytes_per_day=st.sampled_from([0, 40, 10**6]),
    spent_today=st.sampled_from([0, 39, 10**6]),
    anonymous_per_minute=st.sampled_from([0, 1, 100]),
)
asks = st.lists(
    st.builds(
        Ask,
        token=st.one_of(st.none(), st.integers(0, 3)),
        path=st.sampled_from(PATHS),
        method=st.sampled_from(["GET", "HEAD"]),
        range=st.sampled_from([None, "bytes=0-9", "bytes=5-"]),
        late=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


def _apply(db: Session, world: World, tokens: Tokens, change: Change) -> None:
    now = world.clock.now()
    jtis = [c.jti for c in tokens.claims]
    if change.revoked:
        db.execute(
            update(IssuedToken)
            .where(IssuedToken.jti.in_([jtis[i] for i in change.revoked]))
            .values(revoked_at=now - HOUR)
        )
    for i in change.at_limit:
        db.execute(update(IssuedToken).where(IssuedToken.jti == jtis[i]).values(uses=MAX_USES[i]))
    if change.grant_revoked:
        db.execute(update(Grant).values(revoked_at=now - HOUR))
    if change.agreement_ended:
        db.execute(update(PartnerAgreement).values(ends_at=now - HOUR))
    if change.partner_disabled:
        db.execute(update(Partner).values(disabled_at=now - HOUR))
    if change.held:
        db.execute(
            update(Component).where(Component.name.in_(change.held)).values(held_at=now - HOUR)
        )
    for name, tier in change.ceilings:
        db.execute(update(Component).where(Component.name == name).values(restricted_tier=tier))
    if change.spent_today:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        key = f"bytes:user:{world.researcher_id}"
        db.add(QuotaCounter(key=key, window_start=day, amount=change.spent_today))
    db.flush()


def _requests(world: World, tokens: Tokens, wanted: list[Ask]) -> list[Request]:
    out: list[Request] = []
    for a in wanted:
        claims = None if a.token is None else tokens.claims[a.token]
        headers = {"range": a.range} if a.range else {}
        r: Redemption = replace(get(world, claims, a.path, **headers), method=a.method)
        if a.late:
            r = replace(r, now=r.now + HOUR)
        out.append(r)
    return out


def _answer(result: Any) -> Any:
    if isinstance(result, AppError):
        return (result.status, result.code, result.detail)
    return (result.plan, result.sha256, result.size, result.token_expires)


def _state(db: Session) -> dict[str, Any]:
    """Every row a batch writes, without ids and hashes (sequences do not roll back)."""
    conn = db.connection()
    return {
        "tokens": conn.execute(
            select(IssuedToken.jti, IssuedToken.uses, IssuedToken.last_used_at).order_by(
                IssuedToken.jti
            )
        ).all(),
        "starts": conn.execute(
            select(TokenFileStart.__table__).order_by(TokenFileStart.jti, TokenFileStart.path)
        ).all(),
        "quotas": conn.execute(
            select(QuotaCounter.__table__).order_by(QuotaCounter.key, QuotaCounter.window_start)
        ).all(),
        "events": conn.execute(
            select(
                AuditEvent.at,
                AuditEvent.actor,
                AuditEvent.action,
                AuditEvent.target_type,
                AuditEvent.target_id,
                AuditEvent.outcome,
                AuditEvent.data,
            ).order_by(AuditEvent.id)
        ).all(),
    }


def _run(
    db: Session,
    connection: Connection,
    world: World,
    tokens: Tokens,
    change: Change,
    wanted: list[Ask],
    store: BatchStore,
) -> tuple[Any, list[Any], dict[str, Any]]:
    savepoint = connection.begin_nested()
    try:
        _apply(db, world, tokens, change)
        cfg = settings_of(
            world,
            quota_bytes_per_day=change.bytes_per_day,
            quota_anonymous_per_minute=change.anonymous_per_minute,
        )
        requests = _requests(world, tokens, wanted)
        facts = service._read(db, requests, store=store, async_commit=False)
        results = service.redeem_batch(db, requests, cfg, store=store)
        return facts, [_answer(r) for r in results], _state(db)
    finally:
        db.rollback()  # the session's own savepoint (the reads after its commit began one)
        savepoint.rollback()
        db.expire_all()


@pytest.fixture
def tokens(world: World) -> Tokens:
    return _tokens(world)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(change=changes, wanted=asks)
def test_both_stores_read_answer_and_write_alike(
    world: World,
    db: Session,
    connection: Connection,
    tokens: Tokens,
    change: Change,
    wanted: list[Ask],
) -> None:
    facts_pg, answers_pg, state_pg = _run(
        db, connection, world, tokens, change, wanted, PostgresBatch()
    )
    facts_generic, answers_generic, state_generic = _run(
        db, connection, world, tokens, change, wanted, GenericBatch()
    )
    assert facts_pg.read == facts_generic.read
    assert facts_pg.open_files == facts_generic.open_files
    assert answers_pg == answers_generic
    assert state_pg == state_generic
