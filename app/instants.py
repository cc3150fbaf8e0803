"""Bounds for times taken from callers.

A timestamp with a zone is only useful once it is a UTC instant, and near the ends of the
calendar that conversion overflows: ``9999-12-31T23:59:59-14:00`` is in year 10000 in UTC,
and ``datetime`` raises (a 500, where it was converted). Every time a caller sends — schedule
stages, expiries, filters — is therefore taken as an :data:`Instant`: with a zone, converted
to UTC at the edge, and within years :data:`FIRST_YEAR` to :data:`LAST_YEAR`, far enough from
the calendar's ends that adding a day or a token's lifetime to it cannot overflow either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

FIRST_YEAR = 1900
LAST_YEAR = 9000
_FIRST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
_END = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)


def to_instant(value: datetime) -> datetime:
    """``value`` in UTC, or ``ValueError`` (a 422 at the edge) when it is out of range."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError as e:
        raise ValueError(f"time must be between {FIRST_YEAR} and {LAST_YEAR} (UTC)") from e
    if not _FIRST <= utc < _END:
        raise ValueError(f"time must be between {FIRST_YEAR} and {LAST_YEAR} (UTC)")
    return utc


Instant = Annotated[AwareDatetime, AfterValidator(to_instant)]
