"""Request and response bodies of the embargo-control routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.catalogue.schemas import StageIn
from app.inputs import StrictInput
from app.policy.stages import MAX_STAGES
from app.policy.tiers import Tier

StageStateName = Literal["past", "upcoming", "held", "capped"]


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


class HoldState(BaseModel):
    """A component's hold and emergency ceiling, as every schedule answer shows them."""

    held: bool
    held_at: datetime | None
    hold_reason: str | None
    held_by: str | None = Field(
        description="who placed the hold: user:<id> for an admin, system:safety-policy for "
        "a model's automatic safety hold"
    )
    restricted_tier: Tier | None
    restricted_at: datetime | None
    restrict_reason: str | None


class ScheduleOut(HoldState):
    model: str
    version: str
    component: str
    tier: Tier = Field(description="effective tier now")
    next: NextStage | None
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
    held_by: str | None = Field(
        description="who placed the hold (system:safety-policy: the safety policy)"
    )
    restricted_tier: Tier | None


class HoldOut(HoldState):
    model: str
    version: str
    release_status: Literal["draft", "published"]
    component: str
    tier: Tier = Field(description="the component's effective tier now")
    waiting: NextStage | None = Field(
        description="the first stage the hold or the ceiling keeps from applying: what a "
        "resume would bring (at once if its time has passed)"
    )


ReminderEvent = Literal["embargo.upcoming", "credentials.expiring"]


class ReminderOut(BaseModel):
    event: ReminderEvent
    due_at: datetime = Field(
        description="when the scheduler sends it (already past: on its next pass)"
    )
    at: datetime = Field(description="the date it announces: the lift, or the expiry")
    data: dict[str, Any] = Field(description="the webhook event's data, as it will be sent")
