"""Every query of the schedule domain's admin operations (the claimer keeps its own)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, and_, delete, or_, select
from sqlalchemy.orm import Session

from app.models import Component, Model, Release, Stage


def component_for_update(session: Session, release_id: int, name: str) -> Component | None:
    """The component, row-locked until the transaction ends, so two schedule changes to it
    serialise (PostgreSQL; SQLite has a single writer anyway)."""
    return session.scalar(
        select(Component)
        .where(Component.release_id == release_id, Component.name == name)
        .with_for_update()
    )


def stages(session: Session, component_id: int, *, for_update: bool = False) -> list[Stage]:
    q = select(Stage).where(Stage.component_id == component_id).order_by(Stage.at)
    if for_update:
        # The claimer takes stage rows with SKIP LOCKED: while we hold them it records
        # nothing, and what it recorded before we locked shows in transitioned_at.
        q = q.with_for_update()
    return list(session.scalars(q))


def delete_stages(session: Session, stage_ids: Sequence[int]) -> None:
    if stage_ids:
        session.execute(
            delete(Stage)
            .where(Stage.id.in_(stage_ids), Stage.transitioned_at.is_(None))
            .execution_options(synchronize_session=False)
        )


EmbargoRow = Row[Stage, Component, Release, Model]


def embargo_rows(
    session: Session,
    *,
    now: datetime,
    when: str,
    model_id: int | None,
    since: datetime | None,
    until: datetime | None,
    position: tuple[datetime, int] | None,
    descending: bool,
    limit: int,
) -> Sequence[EmbargoRow]:
    """Stages across all models in time order, keyset-paginated on ``(at, id)``."""
    q = (
        select(Stage, Component, Release, Model)
        .join(Component, Component.id == Stage.component_id)
        .join(Release, Release.id == Component.release_id)
        .join(Model, Model.id == Release.model_id)
    )
    if when == "upcoming":
        q = q.where(Stage.at > now)
    elif when == "past":
        q = q.where(Stage.at <= now)
    if model_id is not None:
        q = q.where(Release.model_id == model_id)
    if since is not None:
        q = q.where(Stage.at >= since)
    if until is not None:
        q = q.where(Stage.at < until)
    if position is not None:
        at, sid = position
        if descending:
            q = q.where(or_(Stage.at < at, and_(Stage.at == at, Stage.id < sid)))
        else:
            q = q.where(or_(Stage.at > at, and_(Stage.at == at, Stage.id > sid)))
    order = (Stage.at.desc(), Stage.id.desc()) if descending else (Stage.at, Stage.id)
    return session.execute(q.order_by(*order).limit(limit)).all()
