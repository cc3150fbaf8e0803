"""Property tests of schedule evaluation: for generated schedules, holds, ceilings and
instants, the effective tier is exactly what DESIGN.md says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy.schedule import (
    ScheduleState,
    effective_tier,
    next_stage,
    opens_to,
    scheduled_tier,
)
from app.policy.stages import check_stages
from app.policy.tiers import LADDER, Tier, may_download

pytestmark = pytest.mark.no_database

BASE = datetime(2026, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
SPAN = 10 * 24 * 3600 * 1_000_000  # ten days, in microseconds


def instant(offset: int) -> datetime:
    return BASE + offset * US


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[Tier, datetime]]:
    """Valid schedules: tiers strictly opening, times strictly increasing (to the µs)."""
    tiers = draw(st.lists(st.sampled_from(LADDER[1:]), unique=True, max_size=3))
    tiers.sort(key=lambda t: t.rank)
    offsets = draw(
        st.lists(
            st.integers(min_value=0, max_value=SPAN),
            unique=True,
            min_size=len(tiers),
            max_size=len(tiers),
        )
    )
    offsets.sort()
    stages = [(t, instant(o)) for t, o in zip(tiers, offsets, strict=True)]
    check_stages(stages)  # the generator only makes schedules the API would accept
    return stages


times = st.integers(min_value=-SPAN // 10, max_value=SPAN + SPAN // 10).map(instant)
ceilings = st.one_of(st.none(), st.sampled_from(LADDER))


@settings(max_examples=300)
@given(schedules())
def test_old_tier_one_microsecond_before_each_stage_new_tier_at_it(
    stages: list[tuple[Tier, datetime]],
) -> None:
    state = ScheduleState.of(stages)
    previous = Tier.INTERNAL
    for tier, at in stages:
        assert effective_tier(state, at - US) == previous
        assert effective_tier(state, at) == tier
        previous = tier


@settings(max_examples=300)
@given(schedules(), times)
def test_before_the_first_stage_or_with_none_a_component_is_internal(
    stages: list[tuple[Tier, datetime]], now: datetime
) -> None:
    state = ScheduleState.of(stages)
    if not stages or now < stages[0][1]:
        assert effective_tier(state, now) == Tier.INTERNAL
    else:
        # The tier of the last stage with at <= now.
        assert effective_tier(state, now) == [t for t, at in stages if at <= now][-1]


@settings(max_examples=300)
@given(schedules(), times, times)
def test_a_schedule_only_ever_opens(
    stages: list[tuple[Tier, datetime]], a: datetime, b: datetime
) -> None:
    state = ScheduleState.of(stages)
    early, late = min(a, b), max(a, b)
    assert effective_tier(state, early).rank <= effective_tier(state, late).rank


@settings(max_examples=300)
@given(schedules(), times, times, ceilings)
def test_a_held_schedule_never_opens_further(
    stages: list[tuple[Tier, datetime]], held_at: datetime, now: datetime, ceiling: Tier | None
) -> None:
    held = ScheduleState.of(stages, held_at=held_at, restricted_tier=ceiling)
    free = ScheduleState.of(stages, restricted_tier=ceiling)
    if now < held_at:
        assert effective_tier(held, now) == effective_tier(free, now)
    else:
        # Frozen at the tier it had when the hold was placed, however late it is.
        assert effective_tier(held, now) == effective_tier(free, held_at)
    assert next_stage(held, now) is None
    for clearance in LADDER:
        assert opens_to(held, now, clearance) is None


@settings(max_examples=300)
@given(schedules(), times, st.sampled_from(LADDER))
def test_a_ceiling_caps_the_scheduled_tier(
    stages: list[tuple[Tier, datetime]], now: datetime, ceiling: Tier
) -> None:
    state = ScheduleState.of(stages, restricted_tier=ceiling)
    scheduled = scheduled_tier(state, now)
    effective = effective_tier(state, now)
    assert effective.rank == min(scheduled.rank, ceiling.rank)


@settings(max_examples=300)
@given(schedules(), times, ceilings)
def test_next_stage_is_the_next_change(
    stages: list[tuple[Tier, datetime]], now: datetime, ceiling: Tier | None
) -> None:
    state = ScheduleState.of(stages, restricted_tier=ceiling)
    current = effective_tier(state, now)
    nxt = next_stage(state, now)
    later = [at for _, at in stages if at > now]
    if nxt is None:
        # Nothing ahead changes the tier.
        assert all(effective_tier(state, at) == current for at in later)
    else:
        assert nxt.at > now
        assert effective_tier(state, nxt.at - US) == current
        assert effective_tier(state, nxt.at) == nxt.tier
        assert nxt.tier.rank > current.rank


@settings(max_examples=300)
@given(schedules(), times, ceilings, st.sampled_from(LADDER))
def test_opens_to_is_the_first_instant_the_clearance_may_download(
    stages: list[tuple[Tier, datetime]], now: datetime, ceiling: Tier | None, clearance: Tier
) -> None:
    state = ScheduleState.of(stages, restricted_tier=ceiling)
    if may_download(clearance, effective_tier(state, now)):
        return
    at = opens_to(state, now, clearance)
    future = sorted(a for _, a in stages if a > now)
    if at is None:
        assert not any(may_download(clearance, effective_tier(state, a)) for a in future)
    else:
        assert at > now
        assert may_download(clearance, effective_tier(state, at))
        assert not may_download(clearance, effective_tier(state, at - US))
