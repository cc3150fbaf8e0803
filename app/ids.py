"""Bounds for numeric row ids taken from callers.

Primary keys are 32-bit INTEGERs; an id outside that range can never name a row, and
passing it on makes the database driver raise an overflow (a 500). Refusing it at the edge
turns that into a clear 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

MAX_ROW_ID = 2**31 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="row id")]
IdField = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
