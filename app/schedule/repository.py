"""Every query of the schedule domain's admin operations (the claimer keeps its own)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import ApiKey, Component, Model, Partner, Release, Stage, User
from app.schedule.claimer import due_conditions


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


HoldRow = Row[Component, Release, Model]


def hold_rows(
    session: Session, *, model_id: int | None, after: int | None, limit: int
) -> Sequence[HoldRow]:
    """Components held or restricted now, in id order (keyset on the id)."""
    q = (
        select(Component, Release, Model)
        .join(Release, Release.id == Component.release_id)
        .join(Model, Model.id == Release.model_id)
        .where(or_(Component.held_at.is_not(None), Component.restricted_tier.is_not(None)))
    )
    if model_id is not None:
        q = q.where(Release.model_id == model_id)
    if after is not None:
        q = q.where(Component.id > after)
    return session.execute(q.order_by(Component.id).limit(limit)).all()


@dataclass(frozen=True)
class ReminderWindow:
    """Reminders to list: due before ``until``, after the keyset position ``(due, source,
    id)``. A reminder is due ``lead`` before the date it announces, so each condition on
    the due time is one on the date column, shifted by that source's lead."""

    now: datetime
    until: datetime | None
    position: tuple[datetime, int, int] | None
    limit: int

    def conditions(
        self, column: Any, row_id: Any, *, source: int, lead: timedelta
    ) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [column > self.now]
        if self.until is not None:
            conds.append(column < self.until + lead)
        if self.position is not None:
            due, after_source, after_id = self.position
            at = due + lead
            if source > after_source:
                conds.append(column >= at)
            elif source == after_source:
                conds.append(or_(column > at, and_(column == at, row_id > after_id)))
            else:
                conds.append(column > at)
        return conds


def pending_lift_reminders(
    session: Session, window: ReminderWindow, *, lead: timedelta, model_id: int | None
) -> Sequence[Row[Stage, Component, Release, Model]]:
    """Stages whose ``embargo.upcoming`` is still to be sent: the same conditions as
    :func:`app.schedule.reminders.remind_upcoming_lifts`, without its horizon."""
    horizon = (
        window.until + lead
        if window.until is not None
        else datetime.max.replace(tzinfo=window.now.tzinfo)
    )
    q = (
        select(Stage, Component, Release, Model)
        .join(Component, Component.id == Stage.component_id)
        .join(Release, Release.id == Component.release_id)
        .join(Model, Model.id == Release.model_id)
        .where(*due_conditions(horizon), Stage.reminded_at.is_(None))
        .where(Component.held_at.is_(None))
        .where(*window.conditions(Stage.at, Stage.id, source=0, lead=lead))
    )
    if model_id is not None:
        q = q.where(Release.model_id == model_id)
    return session.execute(q.order_by(Stage.at, Stage.id).limit(window.limit)).all()


def pending_secret_reminders(
    session: Session, window: ReminderWindow, *, lead: timedelta
) -> Sequence[Partner]:
    """Partner secrets whose ``credentials.expiring`` is still to be sent."""
    col = Partner.secret_expires_at
    return session.scalars(
        select(Partner)
        .where(
            col.is_not(None),
            Partner.secret_expiry_reminded_at.is_(None),
            Partner.disabled_at.is_(None),
            *window.conditions(col, Partner.id, source=1, lead=lead),
        )
        .order_by(col, Partner.id)
        .limit(window.limit)
    ).all()


def pending_key_reminders(
    session: Session, window: ReminderWindow, *, lead: timedelta
) -> Sequence[Row[ApiKey, User]]:
    """API keys whose ``credentials.expiring`` is still to be sent."""
    col = ApiKey.expires_at
    return session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(
            col.is_not(None),
            ApiKey.expiry_reminded_at.is_(None),
            ApiKey.revoked_at.is_(None),
            User.disabled_at.is_(None),
            *window.conditions(col, ApiKey.id, source=2, lead=lead),
        )
        .order_by(col, ApiKey.id)
        .limit(window.limit)
    ).all()
