"""The cache epoch (app/freshness.py): what moves it, and what an entry answers under it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.freshness import EpochCache, Freshness, touches_watched
from app.models import ApiKey, User
from tests.factories.principals import make_user


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_another_writers_change_moves_the_epoch_at_the_next_look() -> None:
    log = [(0, 0)]
    ticks = Ticks()
    fresh = Freshness(lambda: log[-1], interval=0.5, monotonic=ticks)
    cache: EpochCache[str, str] = EpochCache(fresh, 10, monotonic=ticks)
    cache.put("k", "v", fresh.epoch())
    log.append((1, 7))  # committed elsewhere
    ticks.t = 0.4
    assert cache.get("k", fresh.epoch()) == "v"  # not looked yet: within the bound
    ticks.t = 0.5
    assert cache.get("k", fresh.epoch()) is None


def test_a_failed_look_and_age_both_end_an_entry() -> None:
    ticks = Ticks()

    def broken() -> tuple[int, int]:
        raise OSError("database gone")

    fresh = Freshness(broken, interval=0.5, monotonic=ticks)
    cache: EpochCache[str, str] = EpochCache(fresh, 10, max_age=60, monotonic=ticks)
    epoch = fresh.epoch()
    cache.put("k", "v", epoch)
    ticks.t = 1.0
    assert cache.get("k", fresh.epoch()) is None
    steady = Freshness(None, monotonic=ticks)
    aged: EpochCache[str, str] = EpochCache(steady, 10, max_age=60, monotonic=ticks)
    aged.put("k", "v", steady.epoch())
    ticks.t = 61.5
    assert aged.get("k", steady.epoch()) is None


def test_an_entry_loaded_while_the_epoch_moved_does_not_answer() -> None:
    fresh = Freshness(None)
    cache: EpochCache[str, str] = EpochCache(fresh, 10)
    loaded_under = fresh.epoch()
    fresh.changed()  # a commit landed while the loader was reading
    cache.put("k", "old", loaded_under)
    assert cache.get("k", fresh.epoch()) is None


@pytest.mark.parametrize(
    ("statement", "watched"),
    [
        ("UPDATE api_keys SET revoked_at=%(revoked_at)s WHERE api_keys.id = %(id)s", True),
        ("UPDATE api_keys SET last_used_at=? WHERE api_keys.id = ?", False),
        ("UPDATE users SET disabled_at=? WHERE users.id = ?", True),
        ("UPDATE stages SET transitioned_at=? WHERE stages.id = ? AND stages.at = ?", False),
        ("INSERT INTO grants (user_id, model_id) VALUES (?, ?)", True),
        ("DELETE FROM partner_agreements WHERE id = ?", True),
        ("UPDATE components SET held_at=? WHERE components.id = ?", True),
        ("INSERT INTO audit_events (at) VALUES (?)", False),
        ("SELECT * FROM grants", False),
        ("WITH x AS (UPDATE issued_tokens SET uses = 1) SELECT 1", False),
    ],
)
def test_what_the_engine_hook_counts_as_a_change(statement: str, watched: bool) -> None:
    assert touches_watched(statement) is watched


def test_a_key_answered_from_the_cache_is_refused_once_revoked_or_its_user_disabled(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    """Written behind the app's back (as the CLI or another replica would, here in the
    test's own session): the commit moves this process's epoch at once."""
    user, key = make_user(db, clock)
    me = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/me", headers=me).status_code == 200
    assert client.get("/v1/me", headers=me).status_code == 200  # from the cache
    db.execute(update(ApiKey).where(ApiKey.user_id == user.id).values(revoked_at=clock.now()))
    db.commit()
    assert client.get("/v1/me", headers=me).status_code == 401
    db.execute(update(ApiKey).where(ApiKey.user_id == user.id).values(revoked_at=None))
    db.commit()
    assert client.get("/v1/me", headers=me).status_code == 200
    db.execute(update(User).where(User.id == user.id).values(disabled_at=clock.now()))
    db.commit()
    assert client.get("/v1/me", headers=me).status_code == 401


def test_a_cached_key_still_expires_by_the_clock_and_stamps_its_last_use(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    user, key = make_user(db, clock)
    db.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user.id)
        .values(expires_at=clock.now() + timedelta(minutes=5))
    )
    db.commit()
    me = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/me", headers=me).status_code == 200
    row = db.scalar(select(ApiKey).where(ApiKey.user_id == user.id))
    assert row is not None
    db.refresh(row)
    assert row.last_used_at == clock.now()
    clock.advance(minutes=2)
    assert client.get("/v1/me", headers=me).status_code == 200  # from the cache, stamped
    db.refresh(row)
    assert row.last_used_at == clock.now()
    clock.advance(minutes=4)
    assert client.get("/v1/me", headers=me).status_code == 401
