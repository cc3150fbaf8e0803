"""One request never harms another: a failure planted in one request of a download batch
fails that request alone, whether it strikes while the request is decided (per item) or in
the work the batch shares (per batch, which splits the batch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.audit.verify import verify_chain
from app.delivery import service, streaming
from app.delivery.service import Request, redeem_batch
from app.delivery.streaming import RangePlan
from app.errors import AppError
from app.models import IssuedToken
from tests.delivery.test_batches import (
    get,
    issue,
    last_event_id,
    new_events,
    outcome,
    settings_of,
    submit_together,
)
from tests.tokens.world import World

PLANT = "x-planted-failure"


def _plant_in_range_planning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deciding a request that carries the PLANT header raises (as a 5,000-digit Range
    header once did in ``int()``)."""
    real = streaming.plan_range

    def planted(headers: Mapping[str, str], *, size: int, sha256: str) -> RangePlan:
        if PLANT in headers:
            raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")
        return real(headers, size=size, sha256=sha256)

    monkeypatch.setattr(service, "plan_range", planted)


def _plant_in_the_shared_read(monkeypatch: pytest.MonkeyPatch, *, times: int | None) -> list[int]:
    """The batch's shared read raises whenever a PLANT request is among the batch's (or, with
    ``times``, for the first ``times`` batches whatever they hold). Returns the sizes of the
    batches that ran the read."""
    real = service._read
    sizes: list[int] = []

    def planted(session: Session, requests: Sequence[Request], **kw: Any) -> Any:
        sizes.append(len(requests))
        poisoned = any(isinstance(r, service.Redemption) and PLANT in r.headers for r in requests)
        if (times is None and poisoned) or (times is not None and len(sizes) <= times):
            raise OverflowError("int too big to convert")
        return real(session, requests, **kw)

    monkeypatch.setattr(service, "_read", planted)
    return sizes


def test_a_per_item_failure_fails_that_request_alone_in_the_same_batch(
    world: World, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plant_in_range_planning(monkeypatch)
    claims = issue(world, world.researcher, components=["config", "tokenizer"], max_uses=5)
    before = last_event_id(db)
    requests = [
        get(world, claims, "config.json"),
        get(world, claims, "tokenizer.json", **{PLANT: "1"}),
        get(world, None, "tokenizer.json"),
        get(world, claims, "tokenizer.json"),
    ]
    results = redeem_batch(db, requests, settings_of(world))
    assert [outcome(r) for r in results] == ["ok 200", "internal_error", "ok 200", "ok 200"]
    failed = results[1]
    assert isinstance(failed, AppError)
    assert failed.status == 500
    assert "4300" not in failed.detail  # nothing of the exception reaches the client
    # One transaction for all four: the failed request is on record like any refusal, and
    # took no use (the two others did).
    events = new_events(db, before)
    assert [(e.action, e.outcome) for e in events] == [
        ("download.redeemed", "ok"),
        ("download.denied", "denied"),
        ("download.anonymous", "ok"),
        ("download.redeemed", "ok"),
    ]
    assert events[1].data["code"] == "internal_error"
    row = db.get(IssuedToken, claims.jti)
    assert row is not None
    db.refresh(row)
    assert row.uses == 2
    assert verify_chain(db).ok


def test_a_per_batch_failure_caused_by_one_request_fails_it_alone(
    world: World,
    db: Session,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes = _plant_in_the_shared_read(monkeypatch, times=None)
    claims = issue(world, world.researcher, components=["config", "tokenizer"], max_uses=5)
    before = last_event_id(db)
    requests: list[Request] = [get(world, claims, "config.json") for _ in range(5)]
    requests.insert(2, get(world, None, "tokenizer.json", **{PLANT: "1"}))
    results = submit_together(session_factory, requests, settings_of(world))
    assert [outcome(r) for r in results] == ["ok 200"] * 2 + ["internal_error"] + ["ok 200"] * 3
    assert sizes == [6, 1, 1, 1, 1, 1, 1]  # the batch, then each request alone
    # The others were served and recorded as if the hostile one had never come; it could
    # not be recorded (its own transaction is what failed), and is answered 500.
    events = new_events(db, before)
    assert [e.data["uses"] for e in events] == [1, 2, 3, 4, 5]
    assert verify_chain(db).ok


def test_a_transient_per_batch_failure_serves_every_request(
    world: World,
    db: Session,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes = _plant_in_the_shared_read(monkeypatch, times=1)
    claims = issue(world, world.researcher, components=["config"], max_uses=3)
    requests = [get(world, claims, "config.json") for _ in range(4)]
    results = submit_together(session_factory, requests, settings_of(world))
    assert [outcome(r) for r in results] == ["ok 200"] * 3 + ["token_uses_exhausted"]
    assert sizes == [4, 1, 1, 1, 1]
