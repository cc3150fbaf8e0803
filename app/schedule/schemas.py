"""Request and response bodies of the embargo-control routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.access.tiers import Tier
from app.inputs import StrictInput
from app.instants import Instant
from app.schedule.rules import MAX_STAGES

StageStateName = Literal["past", "upcoming", "held", "capped"]


class StageIn(StrictInput):
    tier: Tier
    at: Instant


class ScheduleIn(StrictInput):
    schedule: list[StageIn] = Field(
        max_length=MAX_STAGES,
        description="the whole schedule: stages already past must be repeated unchanged",
    )
    reason: str | None = Field(default=None, max_length=2000)


class HoldIn(StrictInput):
    reason: str = Field(min_length=1, max_length=2000)


class ResumeIn(StrictInput):
    reason: str | None = Field(default=None, max_length=2000)


class LiftIn(StrictInput):
    tier: Tier | None = Field(
        default=None, description="open to this tier now; default: the next stage's tier"
    )
    reason: str | None = Field(default=None, max_length=2000)


class RestrictIn(StrictInput):
    tier: Tier = Field(description="the emergency ceiling: internal, partner or research")
    reason: str = Field(min_length=1, max_length=2000)


class StageOut(BaseModel):
    tier: Tier
    at: datetime
    state: StageStateName = Field(
        description="past: took effect; upcoming: will; held: frozen by a hold; "
        "capped: above the emergency ceiling"
    )
    recorded_at: datetime | None = Field(
        description="when the scheduler recorded the lift (null until it has)"
    )


class NextStage(BaseModel):
    tier: Tier
    at: datetime


class ScheduleOut(BaseModel):
    model: str
    version: str
    component: str
    tier: Tier = Field(description="effective tier now")
    next: NextStage | None
    held: bool
    held_at: datetime | None
    hold_reason: str | None
    restricted_tier: Tier | None
    restricted_at: datetime | None
    restrict_reason: str | None
    stages: list[StageOut]
    tokens_revoked: int | None = None


class EmbargoOut(BaseModel):
    model: str
    version: str
    release_status: Literal["draft", "published"]
    component: str
    tier: Tier
    at: datetime
    state: StageStateName
    recorded_at: datetime | None
    component_tier: Tier = Field(description="the component's effective tier now")
    held: bool
    restricted_tier: Tier | None
