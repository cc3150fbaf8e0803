"""Shapes of the webhooks API. The signing secret appears in one place only: the answer to
the request that created the subscription."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.inputs import StrictInput


class WebhookCreate(StrictInput):
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(
        min_length=1,
        max_length=64,
        description="event types to receive, or ['*'] for all of them",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="HMAC key for X-Weightgate-Signature; generated when omitted",
        repr=False,
    )
    description: str = Field(default="", max_length=200)
    include_report_text: bool = Field(
        default=False,
        description="safety.report.* events carry the report's description and evidence "
        "(off: they carry only its category, severity, status and where it points)",
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    include_report_text: bool
    created_at: datetime
    disabled_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown once; store it to verify signatures")


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    """A delivery and all its attempts, oldest first. ``attempt_count`` goes on counting
    through redeliveries."""

    id: int
    event_id: str
    event_type: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
    attempts: list[AttemptOut]
