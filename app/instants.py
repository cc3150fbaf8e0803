"""Bounds for times taken from callers.

A timestamp with a zone is only useful once it is a UTC instant, and near the ends of the
calendar that conversion overflows: ``9999-12-31T23:59:59-14:00`` is in year 10000 in UTC,
and ``datetime`` raises (a 500, where it was converted). Every time a caller sends — schedule
stages, expiries, filters — is therefore taken as an :data:`Instant` (or, where a person may
type ``+2h``, as :data:`app.inputs.When`): with a zone, converted to UTC at the edge, and
within years ``FIRST_YEAR`` to ``LAST_YEAR`` of :mod:`app.when`, far enough from the
calendar's ends that adding a day or a token's lifetime to it cannot overflow either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

from app.when import FIRST_YEAR, LAST_YEAR, to_utc

__all__ = ["FIRST_YEAR", "LAST_YEAR", "Instant", "to_instant"]


def to_instant(value: datetime) -> datetime:
    """``value`` in UTC, or ``ValueError`` (a 422 at the edge) when it is out of range."""
    return to_utc(value)  # WhenError is a ValueError


Instant = Annotated[AwareDatetime, AfterValidator(to_instant)]
