"""Instants as the admin commands print them: UTC as the API gives it, and how far away
(``in 2h``, ``3d ago``), so a terminal reads without mental arithmetic."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.cli.errors import parse_time
from app.when import format_utc

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def distance(delta: timedelta) -> str:
    """``1d 2h``: a duration in its largest unit and the next one, rounded to that next
    unit (``2d 23h 59m 59s`` reads ``3d``; ``0s`` for nothing)."""
    seconds = round(abs(delta.total_seconds()))
    for i, (_, size) in enumerate(_UNITS):
        if seconds >= size:
            step = _UNITS[i + 1][1] if i + 1 < len(_UNITS) else 1
            seconds = round(seconds / step) * step
            break
    for i, (unit, size) in enumerate(_UNITS):
        if seconds >= size:
            text = f"{seconds // size}{unit}"
            if i + 1 < len(_UNITS):
                small, small_size = _UNITS[i + 1]
                rest = seconds % size // small_size
                text += f" {rest}{small}" if rest else ""
            return text
    return "0s"


def relative(at: datetime, now: datetime) -> str:
    """``in 2h``, ``3d 4h ago`` or ``now`` (within a second)."""
    delta = at - now
    if abs(delta) < timedelta(seconds=1):
        return "now"
    return f"in {distance(delta)}" if delta > timedelta(0) else f"{distance(delta)} ago"


def instant(value: object) -> datetime:
    """An instant from an API answer (an ISO 8601 string with a zone)."""
    at = parse_time(value)
    if at is None:
        raise ValueError(f"not an instant: {value!r}")
    return at


def stamp(value: object, now: datetime) -> str:
    """``2027-03-01T00:00:00Z (in 30d)``."""
    at = instant(value)
    return f"{format_utc(at)} ({relative(at, now)})"
