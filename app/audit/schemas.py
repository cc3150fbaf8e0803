"""Shapes of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    outcome: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    data: dict[str, Any]
    client_addr: str | None
    request_id: str | None
    prev_hash: str
    hash: str


class ChainVerification(BaseModel):
    ok: bool
    events: int  # events checked: all, or those after since_id
    last_id: int
    last_hash: str
    since_id: int | None = None  # the anchor the walk started after, when given
    first_bad: int | None = None
    reason: str | None = None
