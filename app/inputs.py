"""The base of every request body: unknown fields refused, strings free of NUL; and
:data:`When`, the schedule time a person types (absolute or ``+2h``).

Unknown fields are refused rather than ignored: a typo must not silently do nothing, and
nothing the caller sends (a tier, a status, a storage key) is copied anywhere it was not
meant to go. NUL characters are refused because PostgreSQL cannot store them in text (the
driver would fail with a 500) and no name, answer or reason legitimately contains one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from app.when import EXAMPLES, WhenError, parse_instant, parse_offset, to_utc


def find_nul(value: Any, where: str = "") -> str | None:
    """The dotted location of the first string containing NUL, or ``None``."""
    if isinstance(value, str):
        return (where or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{where}.{k}" if where else str(k)
            if "\x00" in str(k):
                return here
            found = find_nul(v, here)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = find_nul(v, f"{where}[{i}]")
            if found:
                return found
    return None


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = find_nul(data)
        if where is not None:
            raise PydanticCustomError(
                "nul_character",
                "{where} contains a NUL character, which is not allowed",
                {"where": where.replace("\x00", "\\0")},
            )
        return data


@dataclass(frozen=True)
class Offset:
    """A time typed relative to the call (``+2h``), resolved by :func:`instant`."""

    delta: timedelta


def _when(value: Any) -> datetime | Offset:
    if isinstance(value, datetime):  # Python callers (the CLI's own plans, tests)
        if value.tzinfo is None:
            raise PydanticCustomError("when", "{reason}", {"reason": "a time needs a zone"})
        try:
            return to_utc(value)
        except WhenError as e:
            raise PydanticCustomError("when", "{reason}", {"reason": str(e)}) from e
    if not isinstance(value, str):
        raise PydanticCustomError("when", "{reason}", {"reason": f"expected a string: {EXAMPLES}"})
    try:
        offset = parse_offset(value)
        return parse_instant(value) if offset is None else Offset(offset)
    except WhenError as e:
        raise PydanticCustomError("when", "{reason}", {"reason": str(e)}) from e


When = Annotated[
    datetime | Offset,
    PlainValidator(_when),
    WithJsonSchema(
        {
            "type": "string",
            "description": "an ISO 8601 date-time with a zone, or a time relative to the "
            "call (now, +2h, +30d, +1d12h); answers echo the absolute UTC time",
            "examples": ["2027-03-01T00:00:00Z", "+30d"],
        }
    ),
]
"""A schedule time as a person types it; see :mod:`app.when`."""


def instant(value: datetime | Offset, *, now: datetime) -> datetime:
    """The absolute UTC instant of a :data:`When` at the moment of the call."""
    return now + value.delta if isinstance(value, Offset) else value
