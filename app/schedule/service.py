"""Embargo control: reschedule, hold, resume, lift now, restrict — each audited.

A stage that has taken effect (its time came and no hold froze it, or the scheduler recorded
it) is history: it can be neither edited nor removed. "Lift now" writes a stage at ``now``
instead of announcing anything itself: the scheduler's claimer records that stage like any
other lift, so ``embargo.lifted`` is emitted exactly once whichever way a lift happened.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from app import audit
from app.catalogue import repository as catalogue_repo
from app.catalogue.service import check_schedule
from app.catalogue.visibility import model_not_found
from app.context import RequestContext
from app.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from app.models import Component, Model, Release, Stage, Transition
from app.policy.schedule import ScheduleState, effective_tier, next_stage, scheduled_tier
from app.policy.tiers import LADDER, Tier
from app.revocation.service import revoke_tokens
from app.schedule import repository as repo
from app.schedule.schemas import NextStage, ScheduleOut, StageOut, StageStateName
from app.webhooks.outbox import enqueue_event


class Actor(Protocol):
    """Who changes a schedule: a :class:`Principal`, or a part of the system acting by
    itself (the safety policy's holds), named by its audit subject."""

    @property
    def subject(self) -> str: ...


@dataclass(frozen=True)
class Target:
    model: Model
    release: Release
    component: Component

    @property
    def label(self) -> str:
        return f"{self.model.repo_id}@{self.release.version}/{self.component.name}"


def load_target(
    session: Session, namespace: str, name: str, version: str, component: str
) -> Target:
    """The component to change, row-locked for the rest of the transaction."""
    model = catalogue_repo.model_by_id(session, namespace, name)
    if model is None:
        raise model_not_found(namespace, name)
    rel = catalogue_repo.release(session, model.id, version)
    if rel is None:
        raise NotFound(f"release {version} of {model.repo_id} not found", code="release_not_found")
    comp = repo.component_for_update(session, rel.id, component)
    if comp is None:
        raise NotFound(
            f"component {component} not found in {model.repo_id}@{version}",
            code="component_not_found",
        )
    return Target(model, rel, comp)


def stages_of(session: Session, target: Target) -> list[Stage]:
    """The target component's stages, in order."""
    return list(repo.stages(session, target.component.id))


def state_of(component: Component, stages: Sequence[Stage]) -> ScheduleState:
    return ScheduleState.of(
        [(s.tier, s.at) for s in stages], component.held_at, component.restricted_tier
    )


def happened(stage: Stage, component: Component, now: datetime) -> bool:
    """Whether the stage has taken effect (and so is history that must not change)."""
    if stage.transitioned_at is not None:
        return True
    limit = now if component.held_at is None else min(now, component.held_at)
    return stage.at <= limit


def stage_state(stage: Stage, component: Component, now: datetime) -> StageStateName:
    if stage.transitioned_at is not None:
        return "past"
    if component.held_at is not None and stage.at > component.held_at:
        return "held"
    ceiling = component.restricted_tier
    if ceiling is not None and Tier(stage.tier).rank > Tier(ceiling).rank:
        return "capped"
    return "past" if stage.at <= now else "upcoming"


def hold_state(component: Component) -> dict[str, Any]:
    """The :class:`~app.schedule.schemas.HoldState` fields of a component."""
    return {
        "held": component.held_at is not None,
        "held_at": component.held_at,
        "hold_reason": component.hold_reason,
        "held_by": component.held_by,
        "restricted_tier": Tier(component.restricted_tier) if component.restricted_tier else None,
        "restricted_at": component.restricted_at,
        "restrict_reason": component.restrict_reason,
    }


def schedule_out(
    target: Target, stages: Sequence[Stage], *, now: datetime, tokens_revoked: int | None = None
) -> ScheduleOut:
    comp = target.component
    state = state_of(comp, stages)
    nxt = next_stage(state, now)
    return ScheduleOut(
        model=target.model.repo_id,
        version=target.release.version,
        component=comp.name,
        tier=effective_tier(state, now),
        next=NextStage(tier=nxt.tier, at=nxt.at) if nxt else None,
        **hold_state(comp),
        stages=[
            StageOut(
                tier=Tier(s.tier),
                at=s.at,
                state=stage_state(s, comp, now),
                recorded_at=s.transitioned_at,
            )
            for s in stages
        ],
        tokens_revoked=tokens_revoked,
    )


def snapshot(component: Component, stages: Sequence[Stage], now: datetime) -> dict[str, Any]:
    """What the audit log records before and after a change."""
    return {
        "tier": effective_tier(state_of(component, stages), now).value,
        "schedule": [{"tier": s.tier, "at": s.at.isoformat()} for s in stages],
        "held": component.held_at is not None,
        "hold_reason": component.hold_reason,
        "restricted_tier": component.restricted_tier,
        "restrict_reason": component.restrict_reason,
    }


def schedule_version(component: Component, stages: Sequence[Stage]) -> str:
    """The schedule's version, as an entity tag: it changes with every edit (stages, hold,
    ceiling, reasons) and with nothing else (not with time passing)."""
    state = {
        "schedule": [[s.tier, s.at.isoformat()] for s in stages],
        "held_at": component.held_at.isoformat() if component.held_at else None,
        "hold_reason": component.hold_reason,
        "restricted_tier": component.restricted_tier,
        "restricted_at": component.restricted_at.isoformat() if component.restricted_at else None,
        "restrict_reason": component.restrict_reason,
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:20]}"'


def check_version(session: Session, target: Target, if_match: str | None) -> None:
    """Refuse a change made against an older version of the schedule (``If-Match``), so two
    admins editing the same component at once cannot silently overwrite each other: the
    second is told to reload. The component row is locked (:func:`load_target`), so nothing
    changes between this check and the write."""
    if if_match is None or if_match.strip() == "*":
        return
    current = schedule_version(target.component, repo.stages(session, target.component.id))
    sent = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if current not in sent:
        raise PreconditionFailed(
            f"the schedule of {target.label} was changed by someone else after you read it; "
            "load it again and redo your change on the current schedule",
            code="schedule_changed",
            headers={"ETag": current},
        )


def _changed(
    session: Session,
    target: Target,
    *,
    action: str,
    event: str | None,
    before: dict[str, Any],
    actor: Actor,
    now: datetime,
    reason: str | None,
    ctx: RequestContext | None,
    extra: dict[str, Any] | None = None,
) -> list[Stage]:
    """Audit the change (and enqueue its webhook event); returns the stages as they are now."""
    session.flush()
    stages = repo.stages(session, target.component.id)
    after = snapshot(target.component, stages, now)
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action=action,
        target_type="component",
        target_id=target.label,
        before=before,
        after=after,
        data={"reason": reason, **(extra or {})},
        ctx=ctx,
    )
    if event is not None:
        data = {
            "model": target.model.repo_id,
            "version": target.release.version,
            "component": target.component.name,
            "tier": after["tier"],
            "at": now.isoformat(),
            "reason": reason,
            **(extra or {}),
        }
        if event == "embargo.rescheduled":
            data["schedule"] = after["schedule"]
        enqueue_event(session, event_type=event, data=data, now=now)
    return stages


def _transition(session: Session, target: Target, kind: str, actor: Actor, now: datetime) -> None:
    stages = repo.stages(session, target.component.id)
    tier = effective_tier(state_of(target.component, stages), now)
    session.add(
        Transition(
            component_id=target.component.id,
            kind=kind,
            tier=tier.value,
            at=now,
            recorded_at=now,
            recorded_by=actor.subject,
        )
    )


def reschedule(
    session: Session,
    *,
    target: Target,
    schedule: Sequence[tuple[Tier, datetime]],
    reason: str | None,
    actor: Actor,
    now: datetime,
    ctx: RequestContext | None = None,
) -> list[Stage]:
    """Replace the stages that have not happened with ``schedule``'s.

    ``schedule`` is the whole schedule: every stage that already took effect must be in it
    unchanged (otherwise 422 ``stage_in_past``), and every stage not already in the current
    schedule must be at ``now`` or later.
    """
    comp = target.component
    current = repo.stages(session, comp.id, for_update=True)
    before = snapshot(comp, current, now)
    wanted = [(Tier(t), at) for t, at in schedule]
    check_schedule(wanted)
    keys = {(Tier(s.tier), s.at): s for s in current}
    kept = set(wanted)
    for stage in current:
        if happened(stage, comp, now) and (Tier(stage.tier), stage.at) not in kept:
            raise Unprocessable(
                f"the stage '{stage.tier}' at {stage.at.isoformat()} has already taken effect; "
                "past stages cannot be edited or removed (repeat it unchanged)",
                code="stage_in_past",
            )
    for i, (tier, at) in enumerate(wanted):
        if (tier, at) not in keys and at < now:
            raise Unprocessable(
                f"schedule[{i}].at ({at.isoformat()}) is in the past; new stages must be "
                "now or later",
                code="stage_in_past",
            )
    drop = [s.id for s in current if (Tier(s.tier), s.at) not in kept]
    add = [(t, at) for t, at in wanted if (t, at) not in keys]
    if not drop and not add:
        return current
    repo.delete_stages(session, drop)
    session.flush()
    for tier, at in add:
        session.add(Stage(component_id=comp.id, tier=tier.value, at=at, created_at=now))
    for stage in current:
        if stage.id in drop:
            session.expunge(stage)
    return _changed(
        session,
        target,
        action="schedule.rescheduled",
        event="embargo.rescheduled",
        before=before,
        actor=actor,
        now=now,
        reason=reason,
        ctx=ctx,
    )


def hold(
    session: Session,
    *,
    target: Target,
    reason: str,
    actor: Actor,
    now: datetime,
    ctx: RequestContext | None = None,
    event: str = "embargo.held",
    extra: dict[str, Any] | None = None,
) -> list[Stage]:
    """Freeze the schedule at ``now``: later stages stop applying until resumed. ``event``
    and ``extra`` (added to the audit data and the event) let a caller say where the hold
    came from, e.g. a safety report or policy (app/safety)."""
    comp = target.component
    if comp.held_at is not None:
        raise Conflict(
            f"{target.label} is already held since {comp.held_at.isoformat()}",
            code="already_held",
        )
    current = repo.stages(session, comp.id, for_update=True)
    before = snapshot(comp, current, now)
    comp.held_at = now
    comp.hold_reason = reason.strip()
    comp.held_by = actor.subject
    _transition(session, target, "held", actor, now)
    return _changed(
        session,
        target,
        action="schedule.held",
        event=event,
        before=before,
        actor=actor,
        now=now,
        reason=comp.hold_reason,
        ctx=ctx,
        extra=extra,
    )


def resume(
    session: Session,
    *,
    target: Target,
    reason: str | None,
    actor: Actor,
    now: datetime,
    ctx: RequestContext | None = None,
) -> list[Stage]:
    """Back to the schedule: ends a hold and any emergency restriction. Stages whose time
    passed during the hold take effect at once."""
    comp = target.component
    if comp.held_at is None and comp.restricted_tier is None:
        raise Conflict(
            f"{target.label} is neither held nor restricted; nothing to resume",
            code="not_held",
        )
    current = repo.stages(session, comp.id, for_update=True)
    before = snapshot(comp, current, now)
    extra = {"was_held": comp.held_at is not None, "was_restricted": comp.restricted_tier}
    comp.held_at = comp.hold_reason = comp.held_by = None
    comp.restricted_tier = comp.restricted_at = comp.restrict_reason = None
    session.flush()
    _transition(session, target, "resumed", actor, now)
    return _changed(
        session,
        target,
        action="schedule.resumed",
        event="embargo.resumed",
        before=before,
        actor=actor,
        now=now,
        reason=reason,
        ctx=ctx,
        extra=extra,
    )


def lift(
    session: Session,
    *,
    target: Target,
    tier: Tier | None,
    reason: str | None,
    actor: Actor,
    now: datetime,
    ctx: RequestContext | None = None,
) -> list[Stage]:
    """Open the component to ``tier`` (default: the next stage's) now, as a stage at ``now``.
    Future stages that would no longer open it further are dropped."""
    comp = target.component
    if comp.held_at is not None:
        raise Conflict(f"{target.label} is held; resume it first", code="schedule_held")
    current = repo.stages(session, comp.id, for_update=True)
    before = snapshot(comp, current, now)
    state = state_of(comp, current)
    future = [s for s in current if not happened(s, comp, now)]
    if tier is None:
        if not future:
            raise Unprocessable(
                f"{target.label} has no stage left to lift to; give a tier", code="nothing_to_lift"
            )
        tier = Tier(future[0].tier)
    already = scheduled_tier(state, now)
    ceiling = Tier(comp.restricted_tier) if comp.restricted_tier else None
    if tier.rank <= already.rank and (ceiling is None or tier.rank <= ceiling.rank):
        raise Unprocessable(
            f"{target.label} is already open to '{effective_tier(state, now)}'; a lift must "
            "open further",
            code="not_more_open",
        )
    if ceiling is not None and tier.rank > ceiling.rank:
        raise Conflict(
            f"{target.label} is restricted to '{ceiling}'; resume (or restrict to a more open "
            "tier) before lifting past it",
            code="component_restricted",
        )
    if any(s.at == now for s in current):
        raise Conflict("a stage already starts at this instant; retry", code="stage_conflict")
    dropped = [s for s in future if Tier(s.tier).rank <= tier.rank]
    repo.delete_stages(session, [s.id for s in dropped])
    session.flush()
    for stage in dropped:
        session.expunge(stage)
    session.add(Stage(component_id=comp.id, tier=tier.value, at=now, created_at=now))
    return _changed(
        session,
        target,
        action="schedule.lifted",
        event=None,  # the claimer records the new stage and emits embargo.lifted
        before=before,
        actor=actor,
        now=now,
        reason=reason,
        ctx=ctx,
        extra={
            "tier": tier.value,
            "dropped": [{"tier": s.tier, "at": s.at.isoformat()} for s in dropped],
        },
    )


def restrict(
    session: Session,
    *,
    target: Target,
    tier: Tier,
    reason: str,
    actor: Actor,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[list[Stage], int]:
    """Emergency ceiling: the component opens no further than ``tier`` until resumed.

    Download tokens whose scope covers this component and whose clearance is above ``tier``
    are revoked at once: exactly the tokens the change closes. A token of the same release
    for other components keeps working.
    """
    if tier == Tier.OPEN:
        raise Unprocessable(
            "restricting to 'open' restricts nothing; to end a restriction, resume",
            code="invalid_restriction",
        )
    comp = target.component
    current = repo.stages(session, comp.id, for_update=True)
    before = snapshot(comp, current, now)
    comp.restricted_tier = tier.value
    comp.restricted_at = now
    comp.restrict_reason = reason.strip()
    session.flush()
    revoked = revoke_tokens(
        session,
        now=now,
        reason=f"component {comp.name} restricted to {tier.value}",
        release_id=target.release.id,
        component=comp.name,
        tiers={t for t in LADDER if t.rank > tier.rank},
        kind="download",
    )
    _transition(session, target, "restricted", actor, now)
    stages = _changed(
        session,
        target,
        action="schedule.restricted",
        event="embargo.restricted",
        before=before,
        actor=actor,
        now=now,
        reason=comp.restrict_reason,
        ctx=ctx,
        extra={"ceiling": tier.value, "tokens_revoked": revoked},
    )
    return stages, revoked
