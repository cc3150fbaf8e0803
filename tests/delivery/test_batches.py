"""Downloads decided together (app/delivery/service.py, redeem_batch): each request gets
what it would have got alone, in arrival order, and every one is on record.

The live server forms these batches from concurrent requests; here they are built directly,
so each rule that spans requests (the last use, a quota crossed mid-batch, a continuation of
a path started by the request before) is pinned down request by request.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.audit.verify import verify_chain
from app.context import RequestContext
from app.delivery.group_commit import GroupCommit
from app.delivery.router import verified_claims
from app.delivery.service import (
    Authorized,
    FileAddress,
    Redemption,
    RefusedToken,
    Request,
    redeem,
    redeem_batch,
)
from app.errors import AppError, QuotaExceeded, ServiceUnavailable, TokenInvalid
from app.models import AuditEvent, IssuedToken, QuotaCounter
from app.settings import Settings
from app.tokens.claims import DownloadClaims
from tests.fixtures.parts import app_parts
from tests.tokens.world import World

CTX = RequestContext(client_addr="192.0.2.7", request_id="req-batch")


def settings_of(world: World, **changes: Any) -> Settings:
    return app_parts(world.client.app).settings.model_copy(update=changes)


def claims_of(world: World, token: str) -> DownloadClaims:
    parts = app_parts(world.client.app)
    return verified_claims(token, keys=parts.keys, settings=parts.settings, now=world.clock.now())


def issue(world: World, headers: dict[str, str], **body: Any) -> DownloadClaims:
    return claims_of(world, str(world.token(headers, 201, **body)["token"]))


def get(world: World, claims: DownloadClaims | None, path: str, **headers: str) -> Redemption:
    address = FileAddress("acme", "atlas-7b", "v1", path)
    return Redemption(claims, address, "GET", headers, "proxy", world.clock.now(), CTX)


def outcome(result: Authorized | AppError) -> str:
    return result.code if isinstance(result, AppError) else f"ok {result.plan.status}"


def new_events(db: Session, after: int) -> list[AuditEvent]:
    q = select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)
    return list(db.scalars(q))


def last_event_id(db: Session) -> int:
    return max(db.scalars(select(AuditEvent.id)), default=0)


def submit_together(
    sessions: sessionmaker[Session], requests: Sequence[Request], settings: Settings
) -> list[Authorized | AppError]:
    """``requests`` through the batcher the download route uses, arriving together (so they
    make one batch): each caller's result or error."""
    batches: GroupCommit[Request, Authorized] = GroupCommit(
        lambda items: redeem(sessions, items, settings=settings), max_batch=64
    )

    async def together() -> list[Authorized | BaseException]:
        return await asyncio.gather(*(batches.submit(r) for r in requests), return_exceptions=True)

    out = asyncio.run(together())
    assert all(isinstance(r, Authorized | AppError) for r in out), out
    return [r for r in out if isinstance(r, Authorized | AppError)]


def test_each_request_of_a_batch_gets_its_own_answer_and_event(world: World, db: Session) -> None:
    researcher = issue(world, world.researcher, components=["config", "tokenizer"])
    partner = issue(world, world.partner(), components=["weights"])
    before = last_event_id(db)
    requests: list[Request] = [
        get(world, researcher, "config.json"),
        get(world, partner, "model.safetensors", range="bytes=0-99"),
        get(world, researcher, "model.safetensors"),  # not theirs to know (partner tier)
        get(world, None, "tokenizer.json"),  # open: anonymous
        get(world, None, "config.json"),  # research tier: needs a token
        RefusedToken(
            TokenInvalid("token signature is invalid", code="token_bad_signature"),
            FileAddress("acme", "atlas-7b", "v1", "config.json"),
            "GET",
            world.clock.now(),
            CTX,
        ),
        get(world, researcher, "tokenizer.json"),
    ]
    results = redeem_batch(db, requests, settings_of(world))

    assert [outcome(r) for r in results] == [
        "ok 200",
        "ok 206",
        "file_not_found",
        "ok 200",
        "file_not_found",
        "token_bad_signature",
        "ok 200",
    ]
    served = results[1]
    assert isinstance(served, Authorized)
    assert (served.plan.start, served.plan.end, served.token_expires) == (0, 99, partner.exp)
    events = new_events(db, before)
    assert [(e.action, e.actor, e.target_id.rsplit("/", 1)[-1]) for e in events] == [
        ("download.redeemed", researcher.sub, "config.json"),
        ("download.redeemed", partner.sub, "model.safetensors"),
        ("download.denied", researcher.sub, "model.safetensors"),
        ("download.anonymous", "anonymous", "tokenizer.json"),
        ("download.denied", "anonymous", "config.json"),
        ("download.denied", "anonymous", "config.json"),
        ("download.redeemed", researcher.sub, "tokenizer.json"),
    ]
    assert [e.data.get("code") for e in events if e.outcome == "denied"] == [
        "file_not_found",
        "file_not_found",
        "token_bad_signature",
    ]
    assert events[1].data["range"] == [0, 99]
    assert events[1].data["bytes"] == 100
    assert all(e.client_addr == "192.0.2.7" and e.request_id == "req-batch" for e in events)
    # One token, two files in one batch: both counted, in order.
    assert (events[0].data["uses"], events[6].data["uses"]) == (1, 2)
    assert verify_chain(db).ok


def test_no_two_requests_of_a_batch_take_the_last_use(world: World, db: Session) -> None:
    claims = issue(world, world.researcher, components=["config"], max_uses=2)
    results = redeem_batch(db, [get(world, claims, "config.json")] * 4, settings_of(world))
    assert [outcome(r) for r in results] == [
        "ok 200",
        "ok 200",
        "token_uses_exhausted",
        "token_uses_exhausted",
    ]
    row = db.get(IssuedToken, claims.jti)
    assert row is not None
    db.refresh(row)
    assert row.uses == 2
    # The next batch finds the count where this one left it.
    (again,) = redeem_batch(db, [get(world, claims, "config.json")], settings_of(world))
    assert outcome(again) == "token_uses_exhausted"


def test_a_range_continuing_a_path_started_earlier_in_the_batch_takes_no_use(
    world: World, db: Session
) -> None:
    claims = issue(world, world.researcher, components=["config", "tokenizer"], max_uses=1)
    results = redeem_batch(
        db,
        [
            get(world, claims, "tokenizer.json", range="bytes=0-9"),  # first: takes the use
            get(world, claims, "tokenizer.json", range="bytes=10-"),  # continuation
            get(world, claims, "config.json", range="bytes=0-1"),  # another path: a use
        ],
        settings_of(world),
    )
    assert [outcome(r) for r in results] == ["ok 206", "ok 206", "token_uses_exhausted"]
    events = new_events(db, last_event_id(db) - 3)
    assert events[0].data["uses"] == 1
    assert events[1].data["continuation"] is True
    assert "uses" not in events[1].data


def test_a_quota_crossed_mid_batch_refuses_from_there_and_charges_only_what_was_served(
    world: World, db: Session
) -> None:
    size = len(world.files["config.json"])
    # "reached" mode: a download is refused once the day's total has reached the limit.
    settings = settings_of(world, quota_bytes_per_day=2 * size)
    claims = issue(world, world.researcher, components=["config"], max_uses=10)
    results = redeem_batch(db, [get(world, claims, "config.json")] * 4, settings)
    assert [outcome(r) for r in results] == ["ok 200", "ok 200", "quota_bytes", "quota_bytes"]
    refused = results[2]
    assert isinstance(refused, QuotaExceeded)
    assert int(refused.headers["Retry-After"]) > 0
    counter = db.scalars(
        select(QuotaCounter.amount).where(QuotaCounter.key == f"bytes:{claims.sub}")
    ).one()
    assert counter == 2 * size  # the refused downloads were taken back
    row = db.get(IssuedToken, claims.jti)
    assert row is not None
    db.refresh(row)
    assert row.uses == 2  # and took no use


def test_anonymous_requests_of_a_batch_share_their_address_quota(world: World, db: Session) -> None:
    settings = settings_of(world, quota_anonymous_per_minute=2)
    results = redeem_batch(db, [get(world, None, "tokenizer.json")] * 3, settings)
    assert [outcome(r) for r in results] == ["ok 200", "ok 200", "quota_anonymous_downloads"]


def test_a_new_window_starts_from_zero_and_drops_the_old_one(world: World, db: Session) -> None:
    settings = settings_of(world, quota_anonymous_per_minute=2)
    key = f"anonymous_downloads:{CTX.client_addr}"

    def windows() -> list[tuple[datetime, int]]:
        db.expire_all()
        q = select(QuotaCounter).where(QuotaCounter.key == key)
        return sorted((c.window_start, c.amount) for c in db.scalars(q))

    first = redeem_batch(db, [get(world, None, "tokenizer.json")] * 3, settings)
    assert [outcome(r) for r in first] == ["ok 200", "ok 200", "quota_anonymous_downloads"]
    assert [amount for _, amount in windows()] == [2]  # the refused charge was taken back
    world.clock.advance(60)
    second = redeem_batch(db, [get(world, None, "tokenizer.json")], settings)
    assert [outcome(r) for r in second] == ["ok 200"]
    ((start, amount),) = windows()  # the previous minute's row is gone
    assert amount == 1
    assert start > world.clock.now() - timedelta(seconds=60)


class _FailingOnce:
    """A session factory whose first session fails at commit, as a deadlock would."""

    def __init__(self, inner: sessionmaker[Session]) -> None:
        self.inner = inner
        self.failed = False

    def __call__(self) -> Session:
        session = self.inner()
        if not self.failed:
            self.failed = True

            def commit() -> None:
                raise OperationalError("COMMIT", {}, Exception("deadlock detected"))

            session.commit = commit  # type: ignore[method-assign]
        return session


def test_a_batch_that_fails_in_the_database_is_retried_request_by_request(
    world: World, db: Session, session_factory: sessionmaker[Session]
) -> None:
    claims = issue(world, world.researcher, components=["config"], max_uses=3)
    before = last_event_id(db)
    sessions: Any = _FailingOnce(session_factory)
    requests: Sequence[Request] = [get(world, claims, "config.json")] * 2
    results = submit_together(sessions, requests, settings_of(world))
    assert [outcome(r) for r in results] == ["ok 200", "ok 200"]
    db.expire_all()
    row = db.get(IssuedToken, claims.jti)
    assert row is not None
    assert row.uses == 2
    assert [e.data["uses"] for e in new_events(db, before)] == [1, 2]


def test_a_request_that_fails_alone_gets_a_503_and_its_neighbours_are_served(
    world: World, db: Session, session_factory: sessionmaker[Session]
) -> None:
    claims = issue(world, world.researcher, components=["config"])
    sessions: Any = _FailingOnce(session_factory)
    (result,) = redeem(sessions, [get(world, claims, "config.json")], settings=settings_of(world))
    assert isinstance(result, ServiceUnavailable)
    assert result.status == 503
    assert result.headers["Retry-After"] == "1"
    assert "deadlock" not in result.detail  # nothing from the database reaches the client


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_requests_that_send_no_bytes_take_no_use_and_no_quota(
    world: World, db: Session, method: str
) -> None:
    claims = issue(world, world.researcher, components=["config"], max_uses=1)
    etag = f'"{hashlib.sha256(world.files["config.json"]).hexdigest()}"'
    address = FileAddress("acme", "atlas-7b", "v1", "config.json")
    headers = {"if-none-match": etag} if method == "GET" else {}
    request = Redemption(claims, address, method, headers, "proxy", world.clock.now(), CTX)
    requests = [request, request, get(world, claims, "config.json")]
    results = redeem_batch(db, requests, settings_of(world))
    expected = "ok 304" if method == "GET" else "ok 200"
    assert [outcome(r) for r in results] == [expected, expected, "ok 200"]
