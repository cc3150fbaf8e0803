"""Quotas: fixed-window counters in the database, shared by every replica.

- tokens issued per principal per minute (``WEIGHTGATE_QUOTA_TOKENS_PER_MINUTE``);
- bytes requested per principal per UTC day (``WEIGHTGATE_QUOTA_BYTES_PER_DAY``): a download
  is refused once the day's total has reached the limit; the one that crosses it is served,
  so a file larger than the whole allowance can still be fetched once a day;
- anonymous downloads per client address per minute (``WEIGHTGATE_QUOTA_ANONYMOUS_PER_MINUTE``).

A limit of 0 turns that quota off. Each charge is one ``INSERT … ON CONFLICT DO UPDATE …
RETURNING`` (atomic on SQLite and PostgreSQL); a refused charge is rolled back with the rest
of the request. Why the database and not Redis: docs/tokens.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.errors import QuotaExceeded
from app.settings import Settings
from app.tokens import repository as repo

MINUTE = 60
DAY = 86_400


@dataclass(frozen=True)
class Quota:
    name: str
    limit: int
    window: int
    # "strict": refuse when the new total would pass the limit; "reached": refuse once the
    # total before this charge has reached it.
    mode: str = "strict"


def window_start(now: datetime, window: int) -> datetime:
    t = math.floor(now.timestamp() / window) * window
    return datetime.fromtimestamp(t, UTC)


def charge(session: Session, quota: Quota, *, key: str, amount: int, now: datetime) -> int:
    """Count ``amount`` against ``quota`` for ``key``; :class:`QuotaExceeded` if over."""
    if quota.limit <= 0 or amount <= 0:
        return 0
    start = window_start(now, quota.window)
    counter = f"{quota.name}:{key}"[:200]
    total = repo.add_to_counter(session, counter, start, amount)
    if total == amount:
        # First charge of a new window: the previous windows of this key are dead weight.
        repo.drop_old_windows(session, counter, start)
    before = total - amount
    over = before >= quota.limit if quota.mode == "reached" else total > quota.limit
    if over:
        retry_after = math.ceil(start.timestamp() + quota.window - now.timestamp())
        raise QuotaExceeded(
            f"{quota.name} quota of {quota.limit} per {_per(quota.window)} is used up",
            code=f"quota_{quota.name}",
            retry_after=retry_after,
        )
    return total


def _per(window: int) -> str:
    return {MINUTE: "minute", DAY: "day"}.get(window, f"{window} s")


def tokens_quota(settings: Settings) -> Quota:
    return Quota("tokens", settings.quota_tokens_per_minute, MINUTE)


def bytes_quota(settings: Settings) -> Quota:
    return Quota("bytes", settings.quota_bytes_per_day, DAY, mode="reached")


def anonymous_quota(settings: Settings) -> Quota:
    return Quota("anonymous_downloads", settings.quota_anonymous_per_minute, MINUTE)
