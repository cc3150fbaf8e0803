"""A model's automatic safety hold: when at least K distinct reporters, each of whom may
download a component now, have open reports of at least severity S on it, and its next
stage is within W hours, that next stage is held, by the system, until an admin resumes.

Exactly once, whichever replica decides, however many reports arrive together:

1. Every decision about a component happens under its row lock (``SELECT … FOR UPDATE``,
   re-read with ``populate_existing`` so a value read before the wait is not trusted), in
   the transaction that filed the report. A second filer waits for the first to commit and
   then counts with its report included, and finds the component held already. SQLite has
   one writer (``BEGIN IMMEDIATE``), which serialises the same way.
2. ``safety_holds.stage_id`` is unique: the policy holds a given stage at most once. That
   is also what makes an admin's resume final: the same reports cannot hold that stage
   again. A later stage, once within W hours, is judged afresh.
3. The hold is placed in a SAVEPOINT, so if the backstop ever fired, the report being
   filed would still be recorded.

Locks are taken in one order everywhere (component, then its stages, then the audit
chain's head), so a filer, the sweep and an admin's schedule change cannot deadlock; a filer
takes its components' locks before it writes the rows that reference them
(:func:`lock_before_filing`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.holdings import holdings
from app.models import Component, Model, Release, SafetyHold, SafetyPolicy, Stage, User
from app.policy.principals import Principal
from app.policy.schedule import effective_tier, next_stage
from app.policy.tiers import Tier, may_download
from app.safety import repository as repo
from app.safety.schemas import Severity
from app.schedule import repository as schedule_repo
from app.schedule import service as schedule_service
from app.schedule.service import Target, state_of

POLICY_ACTOR = "system:safety-policy"


@dataclass(frozen=True)
class SystemActor:
    subject: str


SYSTEM = SystemActor(POLICY_ACTOR)


@dataclass(frozen=True)
class Counted:
    """The open reports that count towards a hold of one component, one per reporter."""

    reports: tuple[int, ...]
    reporters: tuple[str, ...]


def lock_before_filing(session: Session, *, model_id: int, component_ids: Iterable[int]) -> None:
    """Row-lock the components a report is about to name, when the model's policy is on.

    Taken before the report's rows are written: inserting a row that references a
    component takes a ``KEY SHARE`` lock on it (the foreign key check), and two filers each
    holding that and then asking for ``FOR UPDATE`` would deadlock."""
    found = repo.policy(session, model_id)
    if found is None or not found.enabled:
        return
    for component_id in sorted(set(component_ids)):
        repo.component_for_update(session, component_id)


def evaluate(session: Session, *, component_ids: Iterable[int], now: datetime) -> list[SafetyHold]:
    """Judge each component (in id order, the lock order) against its model's policy; hold
    those that meet it. Returns the holds placed."""
    placed = []
    for component_id in sorted(set(component_ids)):
        hold = _evaluate_one(session, component_id, now=now)
        if hold is not None:
            placed.append(hold)
    return placed


def _evaluate_one(session: Session, component_id: int, *, now: datetime) -> SafetyHold | None:
    found = session.execute(
        select(Release, Model, SafetyPolicy)
        .join(Component, Component.release_id == Release.id)
        .join(Model, Model.id == Release.model_id)
        .join(SafetyPolicy, SafetyPolicy.model_id == Model.id)
        .where(Component.id == component_id, SafetyPolicy.enabled.is_(True))
    ).first()
    if found is None:
        return None  # no policy, or it is off: nothing to lock, nothing to decide
    release, model, policy = found
    if release.status != "published":
        return None
    comp = repo.component_for_update(session, component_id)
    if comp is None or comp.held_at is not None:
        return None
    stages = schedule_repo.stages(session, comp.id)
    state = state_of(comp, stages)
    nxt = next_stage(state, now)
    if nxt is None or nxt.at - now > timedelta(hours=policy.window_hours):
        return None
    stage = next(s for s in stages if s.at == nxt.at)
    if repo.policy_hold_for_stage(session, stage.id) is not None:
        return None  # held once already and resumed by an admin: that decision stands
    counted = count_reporters(
        session,
        model_id=model.id,
        component_id=comp.id,
        tier=effective_tier(state, now),
        min_severity=Severity(policy.min_severity),
        now=now,
    )
    if len(counted.reporters) < policy.min_reporters:
        return None
    return _hold(session, Target(model, release, comp), stage, policy, counted, now=now)


def count_reporters(
    session: Session,
    *,
    model_id: int,
    component_id: int,
    tier: Tier,
    min_severity: Severity,
    now: datetime,
) -> Counted:
    """Open reports of at least ``min_severity`` on the component, from reporters who may
    download it now (at its effective ``tier``): the earliest report of each reporter."""
    rows = repo.counting_reports(session, component_id=component_id, min_rank=min_severity.rank)
    user_ids = {r.user_id for r in rows if r.user_id is not None}
    partner_ids = {r.partner_id for r in rows if r.partner_id is not None}
    held = holdings(session, user_ids=user_ids, partner_ids=partner_ids, model_ids=[model_id])
    roles: dict[int, str] = {}
    if user_ids:
        live = select(User.id, User.role).where(User.id.in_(user_ids), User.disabled_at.is_(None))
        roles = {uid: str(role) for uid, role in session.execute(live)}
    first: dict[str, int] = {}
    for r in rows:  # oldest first
        if r.reporter in first:
            continue
        if r.user_id is not None:
            if r.user_id not in roles:
                continue  # disabled or gone: cannot download anything
            principal = Principal(kind="user", id=r.user_id, role=roles[r.user_id])
        elif r.partner_id is not None:
            principal = Principal(kind="partner", id=r.partner_id)
        else:
            continue
        clearance = held.clearance(principal, model_id, now)
        if may_download(clearance, tier):
            first[r.reporter] = r.id
    return Counted(tuple(first.values()), tuple(first))


def _hold(
    session: Session,
    target: Target,
    stage: Stage,
    policy: SafetyPolicy,
    counted: Counted,
    *,
    now: datetime,
) -> SafetyHold | None:
    ids = ", ".join(f"#{i}" for i in counted.reports)
    reason = (
        f"safety policy: {len(counted.reporters)} reporters with access have open reports "
        f"of severity {policy.min_severity} or above ({ids}); the {stage.tier} stage at "
        f"{stage.at.isoformat()} waits for an admin to resume"
    )
    row = SafetyHold(
        component_id=target.component.id,
        stage_id=stage.id,
        stage_tier=stage.tier,
        stage_at=stage.at,
        placed_at=now,
        reports=list(counted.reports),
        reporters=list(counted.reporters),
        reason=reason,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None  # another decision held this stage first (the backstop)
    schedule_service.hold(
        session,
        target=target,
        reason=reason,
        actor=SYSTEM,
        now=now,
        event="component.held",
        extra={
            "by": "safety_policy",
            "reports": list(counted.reports),
            "held_stage": {"tier": stage.tier, "at": stage.at.isoformat()},
            "policy": {
                "min_reporters": policy.min_reporters,
                "min_severity": policy.min_severity,
                "window_hours": policy.window_hours,
            },
        },
    )
    return row
