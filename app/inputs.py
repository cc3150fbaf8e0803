"""The base of every request body: unknown fields refused, strings free of NUL.

Unknown fields are refused rather than ignored: a typo must not silently do nothing, and
nothing the caller sends (a tier, a status, a storage key) is copied anywhere it was not
meant to go. NUL characters are refused because PostgreSQL cannot store them in text (the
driver would fail with a 500) and no name, answer or reason legitimately contains one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(v) for v in value)
    return False


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if contains_nul(data):
            raise ValueError("text fields cannot contain NUL characters")
        return data
