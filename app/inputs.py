"""The base of every request body: unknown fields refused, strings free of NUL.

Unknown fields are refused rather than ignored: a typo must not silently do nothing, and
nothing the caller sends (a tier, a status, a storage key) is copied anywhere it was not
meant to go. NUL characters are refused because PostgreSQL cannot store them in text (the
driver would fail with a 500) and no name, answer or reason legitimately contains one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


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
