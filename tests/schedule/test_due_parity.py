"""The scheduler's due-stage SQL (app.schedule.claimer.due_conditions) against the pure rule
(app.policy.schedule.effective_tier), on generated schedules written to the database.

A stage is due (a lift that has happened and is not recorded yet) iff its release is
published, no scheduler has recorded it, and the effective tier of the schedule cut at that
stage is that stage's tier now: it has happened, no hold froze the schedule before it, and no
ceiling caps it. The SQL re-encodes the hold and the ceiling; this keeps the two together.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from app.models import Stage
from app.policy.schedule import ScheduleState, effective_tier
from app.policy.tiers import LADDER, Tier
from app.schedule.claimer import due_stages_query
from tests.factories.schedules import make_component, make_release

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
OPENING = [t for t in LADDER if t != Tier.INTERNAL]
hours = st.integers(-72, 72)


@st.composite
def components(draw: st.DrawFn) -> dict[str, object]:
    tiers = sorted(draw(st.sets(st.sampled_from(OPENING), min_size=1)), key=lambda t: t.rank)
    offsets = sorted(draw(st.sets(hours, min_size=len(tiers), max_size=len(tiers))))
    stages = [(t, T0 + timedelta(hours=h)) for t, h in zip(tiers, offsets, strict=True)]
    # A hold placed at a stage's very instant is the edge the SQL must get right.
    at_a_stage = st.sampled_from([at for _, at in stages])
    return {
        "stages": stages,
        "recorded": [draw(st.booleans()) for _ in tiers],
        "held_at": draw(st.none() | at_a_stage | hours.map(lambda h: T0 + timedelta(hours=h))),
        "restricted": draw(st.none() | st.sampled_from(list(LADDER)[:-1])),
        "published": draw(st.booleans()),
    }


def expected_due(c: dict[str, object], now: datetime) -> list[int]:
    """Indexes of the stages the rule says are due at ``now``."""
    stages = list(c["stages"])  # type: ignore[call-overload]
    due = []
    for i, (tier, _) in enumerate(stages):
        cut = ScheduleState.of(stages[: i + 1], c["held_at"], c["restricted"])  # type: ignore[arg-type]
        happened = effective_tier(cut, now) == tier
        if c["published"] and not c["recorded"][i] and happened:  # type: ignore[index]
            due.append(i)
    return due


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(wanted=st.lists(components(), min_size=1, max_size=3), now_h=hours)
def test_due_stages_are_the_ones_effective_tier_says_have_happened(
    db: Session, connection: Connection, wanted: list[dict[str, object]], now_h: int
) -> None:
    now = T0 + timedelta(hours=now_h)
    savepoint = connection.begin_nested()
    try:
        expected: set[int] = set()
        for c in wanted:
            _, rel = make_release(db, T0, published=bool(c["published"]))
            _, rows = make_component(
                db,
                T0,
                release=rel,
                stages=[(t.value, at) for t, at in c["stages"]],  # type: ignore[attr-defined]
                held_at=c["held_at"],  # type: ignore[arg-type]
                restricted_tier=c["restricted"].value if c["restricted"] else None,  # type: ignore[attr-defined]
            )
            for row, recorded in zip(rows, c["recorded"], strict=True):  # type: ignore[call-overload]
                if recorded:
                    row.transitioned_at = row.at
            expected |= {rows[i].id for i in expected_due(c, now)}
        db.flush()
        mine = {r.id for r in db.scalars(select(Stage))}
        got = set(db.scalars(due_stages_query(now, select(Stage.id)))) & mine
        assert got == expected
    finally:
        db.rollback()
        savepoint.rollback()
        db.expire_all()
