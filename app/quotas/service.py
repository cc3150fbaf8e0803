"""Quotas: fixed-window counters in the database, shared by every replica.

- tokens issued per principal per minute (``WEIGHTGATE_QUOTA_TOKENS_PER_MINUTE``);
- bytes requested per principal per UTC day (``WEIGHTGATE_QUOTA_BYTES_PER_DAY``): a download
  is refused once the day's total has reached the limit; the one that crosses it is served,
  so a file larger than the whole allowance can still be fetched once a day;
- anonymous downloads per client address per minute (``WEIGHTGATE_QUOTA_ANONYMOUS_PER_MINUTE``);
- sign-ups per client address per hour (``WEIGHTGATE_QUOTA_REGISTRATIONS_PER_HOUR``);
- safety reports per reporter per hour (``WEIGHTGATE_QUOTA_REPORTS_PER_HOUR``).

A limit of 0 turns that quota off. A charge is an ``INSERT … ON CONFLICT DO UPDATE …
RETURNING`` (atomic on SQLite and PostgreSQL): :func:`charge` for one request, whose refusal
rolls back with the rest of it; :class:`Ledger` for a batch of downloads, one statement for
all their counters, refused charges taken back before commit. Why the database and not
Redis: docs/tokens.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy.orm import Session

from app.errors import QuotaExceeded
from app.quotas import repository as repo
from app.settings import Settings

MINUTE = 60
HOUR = 3_600
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


def _counter(quota: Quota, key: str, now: datetime) -> repo.Counter:
    return f"{quota.name}:{key}"[:200], window_start(now, quota.window)


def _refusal(
    quota: Quota, *, before: int, amount: int, start: datetime, now: datetime
) -> QuotaExceeded | None:
    total = before + amount
    over = before >= quota.limit if quota.mode == "reached" else total > quota.limit
    if not over:
        return None
    retry_after = math.ceil(start.timestamp() + quota.window - now.timestamp())
    return QuotaExceeded(
        f"{quota.name} quota of {quota.limit} per {_per(quota.window)} is used up",
        code=f"quota_{quota.name}",
        retry_after=retry_after,
    )


def charge(session: Session, quota: Quota, *, key: str, amount: int, now: datetime) -> int:
    """Count ``amount`` against ``quota`` for ``key``; :class:`QuotaExceeded` if over."""
    if quota.limit <= 0 or amount <= 0:
        return 0
    counter, start = _counter(quota, key, now)
    total = repo.add_to_counter(session, counter, start, amount)
    if total == amount:
        # First charge of a new window: the previous windows of this key are dead weight.
        repo.drop_old_windows(session, counter, start)
    refused = _refusal(quota, before=total - amount, amount=amount, start=start, now=now)
    if refused is not None:
        raise refused
    return total


@dataclass(frozen=True)
class Charge:
    quota: Quota
    key: str
    amount: int
    now: datetime

    @property
    def counts(self) -> bool:
        return self.quota.limit > 0 and self.amount > 0

    @cached_property
    def counter(self) -> repo.Counter:
        return _counter(self.quota, self.key, self.now)


class Ledger:
    """The quota charges of a batch of requests, decided one by one, in order, as if each
    request had charged alone.

    All the batch's charges (:func:`asked` sums them per counter) are added at once, in one
    statement that also locks the rows until commit (:func:`repo.add_to_counters`; on
    PostgreSQL :func:`app.delivery.pg_batch.lock`); the ledger starts from the totals that
    returns. Each request then checks its own against the running total of the requests
    before it, and what was refused is taken back before commit (:meth:`refunds`, written
    by :meth:`settle` or by ``pg_batch.write``).
    """

    def __init__(
        self, asked: Mapping[repo.Counter, int], totals: Mapping[repo.Counter, int]
    ) -> None:
        """``asked``: the batch's charges per counter; ``totals``: each counter with them."""
        self._asked = dict(asked)
        self._before = {c: totals[c] - amount for c, amount in asked.items()}
        self._total = dict(self._before)

    def refusal(self, charge: Charge) -> QuotaExceeded | None:
        """Why ``charge`` is over its quota after the ones accepted so far; ``None`` if not."""
        if not charge.counts:
            return None
        counter = charge.counter
        return _refusal(
            charge.quota,
            before=self._total[counter],
            amount=charge.amount,
            start=counter[1],
            now=charge.now,
        )

    def accept(self, charge: Charge) -> None:
        if charge.counts:
            self._total[charge.counter] += charge.amount

    def refunds(self) -> dict[repo.Counter, int]:
        """What to take back from each counter: the charges refused after all."""
        refunds = {c: a - (self._total[c] - self._before[c]) for c, a in self._asked.items()}
        return {c: a for c, a in refunds.items() if a}

    def opened(self) -> list[repo.Counter]:
        """Counters whose window this batch opened: their previous windows are dead weight."""
        return sorted(c for c, before in self._before.items() if before == 0)

    def settle(self, session: Session) -> None:
        """Take back refused charges and drop the windows this batch made obsolete."""
        repo.take_from_counters(session, self.refunds())
        for key, start in self.opened():
            repo.drop_old_windows(session, key, start)


def asked(charges: Iterable[Charge]) -> dict[repo.Counter, int]:
    """The charges that count, summed per counter."""
    amounts: dict[repo.Counter, int] = {}
    for c in charges:
        if c.counts:
            amounts[c.counter] = amounts.get(c.counter, 0) + c.amount
    return amounts


def _per(window: int) -> str:
    return {MINUTE: "minute", HOUR: "hour", DAY: "day"}.get(window, f"{window} s")


def tokens_quota(settings: Settings) -> Quota:
    return Quota("tokens", settings.quota_tokens_per_minute, MINUTE)


def bytes_quota(settings: Settings) -> Quota:
    return Quota("bytes", settings.quota_bytes_per_day, DAY, mode="reached")


def anonymous_quota(settings: Settings) -> Quota:
    return Quota("anonymous_downloads", settings.quota_anonymous_per_minute, MINUTE)


def registrations_quota(settings: Settings) -> Quota:
    return Quota("registrations", settings.quota_registrations_per_hour, HOUR)


def reports_quota(settings: Settings) -> Quota:
    return Quota("reports", settings.quota_reports_per_hour, HOUR)
