"""Presigned URLs: never past the token, never past the cap, reused while fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.delivery.presign import PresignCache

pytestmark = pytest.mark.no_database

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SHA = "ab" * 32


class CountingStore:
    name = "s3"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def presign_get(self, sha256: str, *, expires_in: int, filename: str) -> str | None:
        self.calls.append(expires_in)
        return f"https://s3.example/{sha256}?n={len(self.calls)}&exp={expires_in}"


def url(
    cache: PresignCache, store: Any, now: datetime, not_after: datetime | None, **kw: Any
) -> str | None:
    return cache.url(
        store,
        sha256=kw.get("sha256", SHA),
        filename=kw.get("filename", "a.bin"),
        now=now,
        cap_seconds=kw.get("cap", 300),
        not_after=not_after,
    )


def test_reused_while_at_least_half_its_life_is_left() -> None:
    cache, store = PresignCache(), CountingStore()
    long_token = T0 + timedelta(hours=1)
    first = url(cache, store, T0, long_token)
    assert url(cache, store, T0 + timedelta(seconds=150), long_token) == first
    assert store.calls == [300]
    third = url(cache, store, T0 + timedelta(seconds=151), long_token)
    assert third != first
    assert store.calls == [300, 300]


def test_a_token_expiring_sooner_gets_its_own_shorter_url() -> None:
    cache, store = PresignCache(), CountingStore()
    url(cache, store, T0, T0 + timedelta(hours=1))
    short = url(cache, store, T0 + timedelta(seconds=10), T0 + timedelta(seconds=100))
    assert short is not None
    assert short.endswith("exp=90")
    assert store.calls == [300, 90]
    # A token outliving a cached URL, but not the cap from now, does not get the cached one.
    assert url(cache, store, T0 + timedelta(seconds=20), T0 + timedelta(seconds=310)) is not None
    assert store.calls[-1] == 290


def test_the_cap_is_never_above_five_minutes_and_keys_are_separate() -> None:
    cache, store = PresignCache(), CountingStore()
    url(cache, store, T0, None, cap=3600)
    assert store.calls == [300]
    url(cache, store, T0, None, filename="b.bin")
    url(cache, store, T0, None, sha256="cd" * 32)
    assert len(store.calls) == 3


def test_bounded_size() -> None:
    cache, store = PresignCache(max_entries=2), CountingStore()
    for name in ("a", "b", "c", "a"):
        url(cache, store, T0, None, filename=name)
    assert len(store.calls) == 4  # "a" was evicted by "c"


def test_stores_that_cannot_presign() -> None:
    class Plain:
        name = "filesystem"

        def presign_get(self, sha256: str, *, expires_in: int, filename: str) -> str | None:
            return None

    assert url(PresignCache(), Plain(), T0, None) is None
