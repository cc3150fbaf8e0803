"""Bounds for numeric row ids taken from callers.

Primary keys are 32-bit INTEGERs; an id outside that range can never name a row, and
passing it on makes the database driver raise an overflow (a 500). Refusing it at the edge
turns that into a clear 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ROW_ID = 2**31 - 1  # also in app.policy.principals, which may import nothing of the web

IdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="row id")]
IdQuery = Annotated[int, Query(ge=1, le=MAX_ROW_ID, description="row id")]
IdField = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def parse_row_id(text: str) -> int | None:
    """``text`` as a row id if it is one: ASCII digits naming a possible row. ``str.isdigit``
    also takes ``²`` and other digits ``int()`` refuses, and a 30-digit id overflows the
    driver, so both are checked here rather than where the id is used."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ROW_ID)):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ROW_ID else None
