"""Embargo control routes (admin): read, reschedule, hold, resume, lift now, restrict; and
the views across all models: ``GET /v1/embargoes`` (every transition), ``GET /v1/holds``
(what is held or restricted now), ``GET /v1/reminders`` (the notices still to be sent)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy.orm import Session

from app.auth.dependencies import AdminDep
from app.catalogue.lookups import model_named
from app.catalogue.names import split_model_id
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import problems
from app.instants import Instant
from app.models import Stage
from app.pagination import MAX_LIMIT, Page, PageDep
from app.schedule import embargoes, pending_reminders, service
from app.schedule.schemas import (
    EmbargoOut,
    HoldIn,
    HoldOut,
    LiftIn,
    ReminderOut,
    RestrictIn,
    ResumeIn,
    ScheduleIn,
    ScheduleOut,
)

router = APIRouter(tags=["schedule"])
SCHEDULE = "/v1/models/{namespace}/{name}/releases/{version}/components/{component}/schedule"
WRITE_PROBLEMS = problems(401, 403, 404, 409, 412, 422)
# Optimistic concurrency: every schedule answer carries the schedule's version as its ETag;
# a write sent with If-Match is refused (412 schedule_changed) if the schedule changed since.
IfMatch = Annotated[
    str | None,
    Header(
        max_length=500,
        description="the ETag of the schedule this change was made against; 412 if it changed",
    ),
]


def _tagged(
    response: Response, out: ScheduleOut, target: service.Target, stages: Sequence[Stage]
) -> ScheduleOut:
    response.headers["ETag"] = service.schedule_version(target.component, stages)
    return out


ModelFilter = Annotated[str | None, Query(max_length=193, examples=["acme/atlas-7b"])]


def _model_id(session: Session, model: str | None) -> int | None:
    """The id of the ``?model=`` filter's model (404 if there is none)."""
    if model is None:
        return None
    return model_named(session, *split_model_id(model)).id


@router.get(SCHEDULE, responses=problems(401, 403, 404))
def get_schedule(
    namespace: str,
    name: str,
    version: str,
    component: str,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
) -> ScheduleOut:
    """The component's stages with their state now (past, upcoming, held, capped)."""
    target = service.load_target(session, namespace, name, version, component)
    stages = service.stages_of(session, target)
    return _tagged(response, service.schedule_out(target, stages, now=clock.now()), target, stages)


@router.put(SCHEDULE, responses=WRITE_PROBLEMS)
def put_schedule(
    namespace: str,
    name: str,
    version: str,
    component: str,
    body: ScheduleIn,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    response: Response,
    if_match: IfMatch = None,
) -> ScheduleOut:
    """Reschedule: replace the stages that have not happened. Send the whole schedule;
    stages already past must be repeated unchanged (422 ``stage_in_past`` otherwise)."""
    now = clock.now()
    target = service.load_target(session, namespace, name, version, component)
    service.check_version(session, target, if_match)
    stages = service.reschedule(
        session,
        target=target,
        schedule=[s.resolve(now) for s in body.schedule],
        reason=body.reason,
        actor=admin,
        now=now,
        ctx=ctx,
    )
    return _tagged(response, service.schedule_out(target, stages, now=now), target, stages)


@router.post(SCHEDULE + "/hold", responses=WRITE_PROBLEMS)
def hold(
    namespace: str,
    name: str,
    version: str,
    component: str,
    body: HoldIn,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    response: Response,
    if_match: IfMatch = None,
) -> ScheduleOut:
    """Freeze the schedule now (reason required): no later stage applies until resumed."""
    now = clock.now()
    target = service.load_target(session, namespace, name, version, component)
    service.check_version(session, target, if_match)
    stages = service.hold(session, target=target, reason=body.reason, actor=admin, now=now, ctx=ctx)
    return _tagged(response, service.schedule_out(target, stages, now=now), target, stages)


@router.post(SCHEDULE + "/resume", responses=WRITE_PROBLEMS)
def resume(
    namespace: str,
    name: str,
    version: str,
    component: str,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    response: Response,
    if_match: IfMatch = None,
    body: ResumeIn | None = None,
) -> ScheduleOut:
    """Return to the schedule: ends a hold and any emergency restriction. Stages whose time
    passed meanwhile take effect at once."""
    now = clock.now()
    target = service.load_target(session, namespace, name, version, component)
    service.check_version(session, target, if_match)
    stages = service.resume(
        session, target=target, reason=body.reason if body else None, actor=admin, now=now, ctx=ctx
    )
    return _tagged(response, service.schedule_out(target, stages, now=now), target, stages)


@router.post(SCHEDULE + "/lift", responses=WRITE_PROBLEMS)
def lift(
    namespace: str,
    name: str,
    version: str,
    component: str,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    response: Response,
    if_match: IfMatch = None,
    body: LiftIn | None = None,
) -> ScheduleOut:
    """Lift now: open to ``tier`` (default: the next stage's tier) at this instant. Future
    stages that would not open it further are dropped."""
    now = clock.now()
    target = service.load_target(session, namespace, name, version, component)
    service.check_version(session, target, if_match)
    stages = service.lift(
        session,
        target=target,
        tier=body.tier if body else None,
        reason=body.reason if body else None,
        actor=admin,
        now=now,
        ctx=ctx,
    )
    return _tagged(response, service.schedule_out(target, stages, now=now), target, stages)


@router.post(SCHEDULE + "/restrict", responses=WRITE_PROBLEMS)
def restrict(
    namespace: str,
    name: str,
    version: str,
    component: str,
    body: RestrictIn,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    response: Response,
    if_match: IfMatch = None,
) -> ScheduleOut:
    """Emergency: cap the component at ``tier`` (reason required) until resumed. Download
    tokens covering this component at clearances above the cap are revoked (tokens for the
    release's other components are not)."""
    now = clock.now()
    target = service.load_target(session, namespace, name, version, component)
    service.check_version(session, target, if_match)
    stages, revoked = service.restrict(
        session, target=target, tier=body.tier, reason=body.reason, actor=admin, now=now, ctx=ctx
    )
    out = service.schedule_out(target, stages, now=now, tokens_revoked=revoked)
    return _tagged(response, out, target, stages)


@router.get("/v1/embargoes", responses=problems(401, 403, 404, 422))
def list_embargoes(
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    when: Literal["upcoming", "past", "all"] = "upcoming",
    model: ModelFilter = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> Page[EmbargoOut]:
    """Scheduled transitions across all models: ``upcoming`` soonest first, ``past`` most
    recent first, ``all`` in time order; filter by ``model`` and a ``since``/``until``
    window on the transition time."""
    items, nxt = embargoes.list_embargoes(
        session,
        now=clock.now(),
        when=when,
        model_id=_model_id(session, model),
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=nxt)


@router.get("/v1/holds", responses=problems(401, 403, 404, 422))
def list_holds(
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    page: PageDep,
    model: ModelFilter = None,
) -> Page[HoldOut]:
    """Components held or under an emergency restriction now, across all models, with the
    reason and what resuming would bring (``waiting``)."""
    items, nxt = embargoes.list_holds(
        session,
        now=clock.now(),
        model_id=_model_id(session, model),
        after=page.after,
        limit=page.limit,
    )
    return Page(items=items, next_cursor=nxt)


@router.get("/v1/reminders", responses=problems(401, 403, 404, 422))
def list_reminders(
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    model: ModelFilter = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> Page[ReminderOut]:
    """The reminders still to be sent, soonest first: ``embargo.upcoming`` before each lift
    (``WEIGHTGATE_REMINDER_BEFORE_SECONDS`` ahead) and ``credentials.expiring`` before a
    partner secret or API key expires; each with when it goes out and the event data it
    will carry. ``until`` keeps those due before it; ``model`` keeps that model's lifts."""
    items, nxt = pending_reminders.list_reminders(
        session,
        settings=settings,
        now=clock.now(),
        model_id=_model_id(session, model),
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=nxt)
