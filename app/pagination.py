"""Keyset pagination: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out.

Cursors are opaque to clients (base64 of the last id seen) so the ordering key can change
without breaking them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from app.errors import Unprocessable
from app.ids import MAX_ROW_ID

T = TypeVar("T")

MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = int(base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii"))
    except (binascii.Error, ValueError, UnicodeError) as e:
        raise Unprocessable("cursor is not one this server issued", code="invalid_cursor") from e
    if not 0 <= value <= MAX_ROW_ID:
        # Every cursor is a row id or an offset into a listing; anything larger was never
        # issued, and would overflow the database driver.
        raise Unprocessable("cursor is not one this server issued", code="invalid_cursor")
    return value


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: int | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]
