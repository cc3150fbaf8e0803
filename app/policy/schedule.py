"""Pure evaluation of a schedule at an instant. No database, no clock: callers pass ``now``.

This is what makes a lift take effect at its exact second with no background job: every
request asks :func:`effective_tier` with the current time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.policy.tiers import Tier, more_restricted


@dataclass(frozen=True)
class StageView:
    tier: Tier
    at: datetime


@dataclass(frozen=True)
class ScheduleState:
    """Everything that decides a component's tier: stages, hold, emergency ceiling."""

    stages: tuple[StageView, ...]
    held_at: datetime | None = None
    restricted_tier: Tier | None = None

    @classmethod
    def of(
        cls,
        stages: Sequence[tuple[str | Tier, datetime]],
        held_at: datetime | None = None,
        restricted_tier: str | Tier | None = None,
    ) -> ScheduleState:
        views = tuple(sorted((StageView(Tier(t), at) for t, at in stages), key=lambda s: s.at))
        return cls(views, held_at, Tier(restricted_tier) if restricted_tier else None)


def scheduled_tier(state: ScheduleState, now: datetime) -> Tier:
    """Tier from the stages alone: the last stage with ``at <= t``, where a hold freezes ``t``
    at the moment it was placed; ``internal`` before the first stage."""
    limit = now if state.held_at is None else min(now, state.held_at)
    tier = Tier.INTERNAL
    for stage in state.stages:
        if stage.at <= limit:
            tier = stage.tier
        else:
            break
    return tier


def effective_tier(state: ScheduleState, now: datetime) -> Tier:
    tier = scheduled_tier(state, now)
    if state.restricted_tier is not None:
        tier = more_restricted(tier, state.restricted_tier)
    return tier


def next_stage(state: ScheduleState, now: datetime) -> StageView | None:
    """The next change of the effective tier, or ``None`` (held, or nothing ahead opens it
    further). Under an emergency ceiling a stage above it still opens the component *up to*
    the ceiling, so the change it brings is reported with the capped tier."""
    if state.held_at is not None:
        return None
    current = effective_tier(state, now)
    for stage in state.stages:
        if stage.at <= now:
            continue
        tier = stage.tier
        if state.restricted_tier is not None:
            tier = more_restricted(tier, state.restricted_tier)
        if tier.rank > current.rank:
            return StageView(tier, stage.at)
    return None


def opens_to(state: ScheduleState, now: datetime, clearance: Tier) -> datetime | None:
    """When the component becomes downloadable for ``clearance`` if the schedule runs as
    planned; ``None`` if never (held, restricted, or no such stage)."""
    if state.held_at is not None:
        return None
    for stage in state.stages:
        if stage.at > now and clearance.rank <= stage.tier.rank:
            if state.restricted_tier is not None and clearance.rank > state.restricted_tier.rank:
                return None
            return stage.at
    return None
