"""The admin's view of every scheduled transition across all models, past and upcoming."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.access.tiers import Tier
from app.catalogue import repository as catalogue_repo
from app.errors import Unprocessable
from app.ids import MAX_ROW_ID
from app.instants import to_instant
from app.schedule import repository as repo
from app.schedule.evaluate import effective_tier
from app.schedule.schemas import EmbargoOut
from app.schedule.service import stage_state, state_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def encode_position(at: datetime, stage_id: int) -> str:
    """An opaque cursor for the keyset ``(at, id)``."""
    micros = (at - _EPOCH) // _MICRO
    raw = f"{micros}.{stage_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, _, sid = base64.urlsafe_b64decode(padded.encode("ascii")).decode().partition(".")
        at, stage_id = _EPOCH + int(micros) * _MICRO, int(sid)
        to_instant(at)  # within the years a stage can have
    except (binascii.Error, ValueError, UnicodeError, OverflowError) as e:
        raise Unprocessable("cursor is not one this server issued", code="invalid_cursor") from e
    if not 0 <= stage_id <= MAX_ROW_ID:
        raise Unprocessable("cursor is not one this server issued", code="invalid_cursor")
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
                restricted_tier=Tier(comp.restricted_tier) if comp.restricted_tier else None,
            )
        )
    nxt = None
    if len(rows) == limit:
        last = rows[-1][0]
        nxt = encode_position(last.at, last.id)
    return items, nxt
