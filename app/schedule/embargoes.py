"""The admin's view of every scheduled transition across all models, past and upcoming, and
of the components held or restricted now."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.catalogue import repository as catalogue_repo
from app.errors import Unprocessable
from app.ids import MAX_ROW_ID
from app.instants import to_instant
from app.models import Component, Stage
from app.pagination import encode_cursor
from app.policy.schedule import ScheduleState, effective_tier, next_stage, scheduled_tier
from app.policy.tiers import Tier
from app.schedule import repository as repo
from app.schedule.schemas import EmbargoOut, HoldOut, NextStage
from app.schedule.service import hold_state, stage_state, state_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def encode_position(at: datetime, *ids: int) -> str:
    """An opaque cursor for the keyset ``(at, *ids)``."""
    micros = (at - _EPOCH) // _MICRO
    raw = ".".join(str(n) for n in (micros, *ids)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keyset(cursor: str, ids: int) -> tuple[datetime, tuple[int, ...]]:
    """The ``(at, ids)`` an :func:`encode_position` cursor holds, ``ids`` numbers after the
    time; 422 ``invalid_cursor`` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, *rest = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split(".")
        if len(rest) != ids:
            raise ValueError("wrong number of parts")
        at, row_ids = _EPOCH + int(micros) * _MICRO, tuple(int(n) for n in rest)
        to_instant(at)  # within the years a stage can have
    except (binascii.Error, ValueError, UnicodeError, OverflowError) as e:
        raise Unprocessable("cursor is not one this server issued", code="invalid_cursor") from e
    if not all(0 <= n <= MAX_ROW_ID for n in row_ids):
        raise Unprocessable("cursor is not one this server issued", code="invalid_cursor")
    return at, row_ids


def decode_position(cursor: str) -> tuple[datetime, int]:
    at, (stage_id,) = decode_keyset(cursor, 1)
    return at, stage_id


def list_embargoes(
    session: Session,
    *,
    now: datetime,
    when: str,
    model_id: int | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[EmbargoOut], str | None]:
    """Upcoming stages soonest first; past ones most recent first; ``all`` in time order."""
    descending = when == "past"
    rows = repo.embargo_rows(
        session,
        now=now,
        when=when,
        model_id=model_id,
        since=since,
        until=until,
        position=decode_position(cursor) if cursor else None,
        descending=descending,
        limit=limit,
    )
    schedules = catalogue_repo.stages_for(session, list({c.id for _, c, _, _ in rows}))
    items = []
    for stage, comp, rel, model in rows:
        state = state_of(comp, schedules[comp.id])
        items.append(
            EmbargoOut(
                model=model.repo_id,
                version=rel.version,
                release_status="published" if rel.status == "published" else "draft",
                component=comp.name,
                tier=Tier(stage.tier),
                at=stage.at,
                state=stage_state(stage, comp, now),
                recorded_at=stage.transitioned_at,
                component_tier=effective_tier(state, now),
                held=comp.held_at is not None,
                held_by=comp.held_by,
                restricted_tier=Tier(comp.restricted_tier) if comp.restricted_tier else None,
            )
        )
    nxt = None
    if len(rows) == limit:
        last = rows[-1][0]
        nxt = encode_position(last.at, last.id)
    return items, nxt


def waiting_stage(stages: list[Stage], component: Component, now: datetime) -> NextStage | None:
    """What resuming would bring: the tier the stages alone give now, if the hold or the
    ceiling keeps the component below it (with the time it would have opened), else the
    next stage ahead."""
    free = ScheduleState.of([(s.tier, s.at) for s in stages])
    scheduled = scheduled_tier(free, now)
    if scheduled.rank > effective_tier(state_of(component, stages), now).rank:
        since = max(s.at for s in stages if s.at <= now and Tier(s.tier) == scheduled)
        return NextStage(tier=scheduled, at=since)
    nxt = next_stage(free, now)
    return NextStage(tier=nxt.tier, at=nxt.at) if nxt else None


def list_holds(
    session: Session, *, now: datetime, model_id: int | None, after: int | None, limit: int
) -> tuple[list[HoldOut], str | None]:
    """Components held or restricted now, across models, in the order they were created."""
    rows = repo.hold_rows(session, model_id=model_id, after=after, limit=limit)
    schedules = catalogue_repo.stages_for(session, [c.id for c, _, _ in rows])
    items = [
        HoldOut(
            model=model.repo_id,
            version=rel.version,
            release_status="published" if rel.status == "published" else "draft",
            component=comp.name,
            tier=effective_tier(state_of(comp, schedules[comp.id]), now),
            **hold_state(comp),
            waiting=waiting_stage(schedules[comp.id], comp, now),
        )
        for comp, rel, model in rows
    ]
    nxt = encode_cursor(rows[-1][0].id) if len(rows) == limit else None
    return items, nxt
