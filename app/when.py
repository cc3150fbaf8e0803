"""Times a person types: an ISO 8601 instant with a zone, or an offset from now (``+2h``,
or ``now`` itself).

Schedules are typed by people, in shell history and in docs that must keep working on any
day, so every schedule input also takes ``+30d``-style offsets. An offset is resolved once,
against the instant the call is made, and the caller is shown the absolute UTC time it
became: nothing stores "two hours from whenever this is read".

Shared by the server's request schemas and the client-side CLI, so it imports nothing but
the standard library.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "MAX_OFFSET",
    "WhenError",
    "format_utc",
    "parse_instant",
    "parse_offset",
    "resolve",
    "to_utc",
]

# '+2h', '+30d', '+1d12h', '+90m', '+1w'. Units in decreasing order, each at most once.
_OFFSET = re.compile(
    r"\+(?=\d)(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?"
)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
FIRST_YEAR = 1900
LAST_YEAR = 9000
_FIRST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
_END = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)
# A century is far beyond any embargo, and keeps now + offset clear of datetime's year 9999.
MAX_OFFSET = timedelta(days=36525)
EXAMPLES = "e.g. 2027-03-01T00:00:00Z, 2027-03-01T09:00:00+09:00, now, +2h, +30d or +1d12h"


class WhenError(ValueError):
    """The text is neither an instant with a zone nor an offset; the message says why."""


def parse_offset(text: str) -> timedelta | None:
    """The offset ``text`` spells (``+2h``; ``now`` is ``+0s``), ``None`` if it is not an
    offset at all."""
    text = text.strip()
    if text == "now":
        return timedelta(0)
    if not text.startswith("+"):
        return None
    match = _OFFSET.fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        raise WhenError(
            f"{text!r} is not a relative time: write + and a number with a unit "
            "(w, d, h, m, s), largest unit first, e.g. +2h, +30d or +1d12h"
        )
    parts = {_UNITS[unit]: int(n) for unit, n in match.groupdict().items() if n is not None}
    if any(len(str(n)) > 9 for n in parts.values()):
        raise WhenError(f"{text!r} is too far ahead (at most {MAX_OFFSET.days} days)")
    offset = timedelta(**parts)
    if offset > MAX_OFFSET:
        raise WhenError(f"{text!r} is too far ahead (at most {MAX_OFFSET.days} days)")
    return offset


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant that states its zone, as UTC."""
    text = text.strip()
    try:
        at = datetime.fromisoformat(text)
    except ValueError as e:
        raise WhenError(f"{text!r} is not an ISO 8601 date-time ({EXAMPLES})") from e
    if at.tzinfo is None:
        raise WhenError(f"{text!r} has no time zone; add Z or an offset ({EXAMPLES})")
    return to_utc(at)


def to_utc(at: datetime) -> datetime:
    """An aware ``at`` in UTC, refused outside years :data:`FIRST_YEAR`-:data:`LAST_YEAR`:
    near the calendar's ends the conversion itself overflows (``9999-12-31T23:59:59-14:00``
    is in year 10000 in UTC), and adding a day or a token's lifetime to it must not."""
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not _FIRST <= utc < _END:
        raise WhenError(f"time must be between {FIRST_YEAR} and {LAST_YEAR} (UTC)")
    return utc


def resolve(text: str, *, now: datetime) -> datetime:
    """What ``text`` means at ``now``: an offset from it, or the instant it names."""
    offset = parse_offset(text)
    return parse_instant(text) if offset is None else (now + offset).astimezone(UTC)


def format_utc(at: datetime) -> str:
    """``2027-03-01T00:00:00Z``: the form the API answers with."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
