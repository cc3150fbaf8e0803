"""Recording embargo lifts exactly once, whichever replica's scheduler gets there first.

Access never waits for this module: :func:`app.policy.schedule.effective_tier` opens a
component at the stage's exact second. What the claimer adds is the *record* of the lift
(a :class:`Transition`, an ``embargo.lifted`` audit event, one outbox row per webhook
subscription), written once across every replica:

1. ``SELECT … FOR UPDATE OF stages SKIP LOCKED`` (PostgreSQL) picks due stages no other
   claimer is working on, so replicas split the work instead of queueing behind each other.
2. ``UPDATE stages SET transitioned_at = :now WHERE id = :id AND transitioned_at IS NULL``
   is a compare-and-set: on a backend without row locks (SQLite) or if a row lock were ever
   lost, a second claimer's update matches nothing and it records nothing.
3. ``transitions.stage_id`` is unique: the constraint is the last backstop.

All of it happens in the caller's transaction (the claimer only flushes). A claimer that
dies before committing leaves the stages due for the next one. No session-level advisory
locks: they outlive transactions behind a connection pooler.

Which stages are due: ``at <= now``, not yet recorded, in a published release, not frozen
by a hold placed before ``at``, and not above an emergency ceiling (``restricted_tier``). A
stage above the ceiling does not change the effective tier while the restriction stands, so
it is not announced then; it stays due and is recorded as lifted when the restriction is
removed, which is when the component really opens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import audit
from app.audit import NewEvent
from app.models import Component, Model, Release, Stage, Transition
from app.policy.schedule import ScheduleState, effective_tier
from app.policy.tiers import LADDER, Tier
from app.webhooks.outbox import OutboxEvent, enqueue_events

SCHEDULER_ACTOR = "system:scheduler"
_JUST_BEFORE = timedelta(microseconds=1)


def _rank(column: Any) -> ColumnElement[int]:
    """A tier column as its rank on the ladder (0 = internal), for comparisons in SQL."""
    return case({tier.value: tier.rank for tier in LADDER}, value=column, else_=-1)


def due_conditions(now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE clause of "a lift that has happened and is not recorded yet"."""
    return [
        Stage.transitioned_at.is_(None),
        Stage.at <= now,
        Release.status == "published",
        or_(Component.held_at.is_(None), Stage.at <= Component.held_at),
        or_(
            Component.restricted_tier.is_(None),
            _rank(Stage.tier) <= _rank(Component.restricted_tier),
        ),
    ]


def due_stages_query(now: datetime, query: Select[Any]) -> Select[Any]:
    """``query`` (e.g. ``select(Stage.id)``) restricted to due stages."""
    return (
        query.select_from(Stage)
        .join(Component, Component.id == Stage.component_id)
        .join(Release, Release.id == Component.release_id)
        .where(and_(*due_conditions(now)))
    )


def lift_event_id(stage: Stage) -> str:
    """The idempotency id of a stage's ``embargo.lifted`` event: the same on every retry and
    every replica, so a receiver can drop duplicates of an at-least-once delivery."""
    key = f"embargo.lifted:{stage.id}:{stage.component_id}:{stage.tier}:{stage.at.isoformat()}"
    return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def claim_due_transitions(
    session: Session, *, now: datetime, replica: str, limit: int = 100
) -> list[Transition]:
    """Record up to ``limit`` due lifts in the session's transaction; returns what *this*
    call recorded (nothing that another claimer holds or has recorded)."""
    candidates = session.scalars(
        due_stages_query(now, select(Stage.id))
        .order_by(Stage.at, Stage.id)
        .limit(limit)
        .with_for_update(of=Stage, skip_locked=True)
    ).all()
    if not candidates:
        return []
    # One compare-and-set for the batch; RETURNING says which rows *this* statement changed.
    won = session.scalars(
        update(Stage)
        .where(Stage.id.in_(candidates), Stage.transitioned_at.is_(None))
        .values(transitioned_at=now)
        .returning(Stage.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not won:
        return []
    return _record(session, won, now=now, replica=replica)


def _record(
    session: Session, stage_ids: Sequence[int], *, now: datetime, replica: str
) -> list[Transition]:
    rows = session.execute(
        select(Stage, Component, Release, Model)
        .join(Component, Component.id == Stage.component_id)
        .join(Release, Release.id == Component.release_id)
        .join(Model, Model.id == Release.model_id)
        .where(Stage.id.in_(stage_ids))
        .order_by(Stage.at, Stage.id)
    ).all()
    schedules = _schedules(session, [component.id for _, component, _, _ in rows])
    lifts: list[tuple[Transition, Tier, Stage, Release, Model, Component]] = []
    for stage, component, release, model in rows:
        state = ScheduleState.of(
            schedules[component.id], component.held_at, component.restricted_tier
        )
        before = effective_tier(state, stage.at - _JUST_BEFORE)
        transition = Transition(
            stage_id=stage.id,
            component_id=component.id,
            kind="lifted",
            tier=effective_tier(state, stage.at).value,
            at=stage.at,
            recorded_at=now,
            recorded_by=replica[:128],
        )
        session.add(transition)
        lifts.append((transition, before, stage, release, model, component))
    session.flush()  # the unique stage_id is checked here: the exactly-once backstop
    events: list[OutboxEvent] = []
    audit.record_many(
        session,
        [
            NewEvent(
                now=now,
                actor=SCHEDULER_ACTOR,
                action="embargo.lifted",
                target_type="component",
                target_id=f"{model.repo_id}@{release.version}/{component.name}",
                before={"tier": before.value},
                after={"tier": transition.tier},
                data={
                    "stage_id": stage.id,
                    "transition_id": transition.id,
                    "at": stage.at.isoformat(),
                    "replica": replica,
                },
            )
            for transition, before, stage, release, model, component in lifts
        ],
    )
    for transition, before, stage, release, model, component in lifts:
        events.append(
            OutboxEvent(
                "embargo.lifted",
                {
                    "model": model.repo_id,
                    "version": release.version,
                    "component": component.name,
                    "tier": transition.tier,
                    "previous_tier": before.value,
                    "at": stage.at.isoformat(),
                },
                event_id=lift_event_id(stage),
            )
        )
    enqueue_events(session, events, now=now)
    return [lift[0] for lift in lifts]


def _schedules(
    session: Session, component_ids: Sequence[int]
) -> dict[int, list[tuple[str, datetime]]]:
    stages = session.execute(
        select(Stage.component_id, Stage.tier, Stage.at).where(
            Stage.component_id.in_(set(component_ids))
        )
    ).all()
    out: dict[int, list[tuple[str, datetime]]] = {cid: [] for cid in component_ids}
    for component_id, tier, at in stages:
        out[component_id].append((tier, at))
    return out
