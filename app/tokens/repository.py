"""Every query of the tokens domain: token rows, use counting, per-file starts, quota counters.

The writes that must hold under concurrency are single statements the database makes atomic:
taking a use is one conditional ``UPDATE … WHERE uses < max_uses``, a file start and a quota
count are ``INSERT … ON CONFLICT``. No read-then-write races, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import (
    Component,
    IssuedToken,
    Model,
    Partner,
    QuotaCounter,
    Release,
    ReleaseFile,
    Stage,
    TokenFileStart,
    User,
)


def add_token(session: Session, row: IssuedToken) -> None:
    session.add(row)
    session.flush()


def token(session: Session, jti: str) -> IssuedToken | None:
    return session.get(IssuedToken, jti)


def tokens_of(
    session: Session, subject: str, *, live_at: datetime | None, after: str | None, limit: int
) -> Sequence[IssuedToken]:
    q = select(IssuedToken).where(IssuedToken.subject == subject)
    if live_at is not None:
        q = q.where(IssuedToken.revoked_at.is_(None), IssuedToken.expires_at > live_at)
    if after is not None:
        q = q.where(IssuedToken.jti > after)
    return session.scalars(q.order_by(IssuedToken.jti).limit(limit)).all()


def partner_access(session: Session, jti: str) -> tuple[IssuedToken, Partner] | None:
    row = session.execute(
        select(IssuedToken, Partner)
        .join(Partner, Partner.id == IssuedToken.partner_id)
        .where(IssuedToken.jti == jti)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def partner(session: Session, partner_id: int) -> Partner | None:
    return session.get(Partner, partner_id)


def revoke(session: Session, jti: str, *, now: datetime, reason: str) -> bool:
    """Revoke one live token; ``False`` if it was already revoked."""
    result = session.execute(
        update(IssuedToken)
        .where(IssuedToken.jti == jti, IssuedToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RedemptionFacts:
    """What a redemption needs about the token and the requested file, in one round trip."""

    jti: str
    kind: str
    subject: str
    revoked_at: datetime | None
    max_uses: int | None
    uses: int
    model_id: int | None
    release_id: int | None
    revision: str | None
    release_status: str | None
    file_sha256: str | None
    file_size: int | None
    component_id: int | None
    component_name: str | None
    held_at: datetime | None
    restricted_tier: str | None
    user_role: str | None
    user_disabled_at: datetime | None
    partner_name: str | None
    partner_disabled_at: datetime | None


def _core(session: Session, stmt: Any, params: dict[str, Any]) -> Any:
    """Run a statement on the session's connection, in its transaction, without the ORM's
    execution machinery (none of these statements loads or changes mapped objects)."""
    return session.connection().execute(stmt, params)


# The redemption's statements are built once: constructing a select() costs more CPU than
# executing it against a warm PostgreSQL, and these run on every download.
_FACTS = (
    select(
        IssuedToken.jti,
        IssuedToken.kind,
        IssuedToken.subject,
        IssuedToken.revoked_at,
        IssuedToken.max_uses,
        IssuedToken.uses,
        IssuedToken.model_id,
        IssuedToken.release_id,
        Release.revision,
        Release.status,
        ReleaseFile.sha256,
        ReleaseFile.size,
        Component.id,
        Component.name,
        Component.held_at,
        Component.restricted_tier,
        User.role,
        User.disabled_at,
        Partner.name,
        Partner.disabled_at,
    )
    .outerjoin(Release, Release.id == IssuedToken.release_id)
    .outerjoin(
        ReleaseFile,
        and_(
            ReleaseFile.release_id == IssuedToken.release_id,
            ReleaseFile.path == bindparam("path"),
        ),
    )
    .outerjoin(Component, Component.id == ReleaseFile.component_id)
    .outerjoin(User, User.id == IssuedToken.user_id)
    .outerjoin(Partner, Partner.id == IssuedToken.partner_id)
    .where(IssuedToken.jti == bindparam("jti"))
)


def redemption_facts(session: Session, *, jti: str, path: str) -> RedemptionFacts | None:
    """The token row joined to its holder, its release and (if it is there) the file at
    ``path``: everything a redemption checks, in one round trip."""
    row = _core(session, _FACTS, {"jti": jti, "path": path}).one_or_none()
    return None if row is None else RedemptionFacts(*row)


_STAGES = (
    select(Stage.tier, Stage.at).where(Stage.component_id == bindparam("cid")).order_by(Stage.at)
)


def stages_of(session: Session, component_id: int) -> list[tuple[str, datetime]]:
    return [(tier, at) for tier, at in _core(session, _STAGES, {"cid": component_id})]


@dataclass(frozen=True)
class OpenFileFacts:
    """A file looked up by its public coordinates (anonymous downloads)."""

    model_id: int
    release_id: int
    release_status: str
    revision: str | None
    file_sha256: str | None
    file_size: int | None
    component_id: int | None
    component_name: str | None
    held_at: datetime | None
    restricted_tier: str | None


def file_facts(
    session: Session, *, namespace: str, name: str, version: str, path: str
) -> OpenFileFacts | None:
    row = session.execute(
        select(
            Model.id,
            Release.id,
            Release.status,
            Release.revision,
            ReleaseFile.sha256,
            ReleaseFile.size,
            Component.id,
            Component.name,
            Component.held_at,
            Component.restricted_tier,
        )
        .join(Release, Release.model_id == Model.id)
        .outerjoin(
            ReleaseFile, and_(ReleaseFile.release_id == Release.id, ReleaseFile.path == path)
        )
        .outerjoin(Component, Component.id == ReleaseFile.component_id)
        .where(Model.namespace == namespace, Model.name == name, Release.version == version)
    ).one_or_none()
    return None if row is None else OpenFileFacts(*row)  # type: ignore[call-arg]


_TAKE_USE = (
    update(IssuedToken)
    .where(
        IssuedToken.jti == bindparam("b_jti"),
        IssuedToken.revoked_at.is_(None),
        or_(IssuedToken.max_uses.is_(None), IssuedToken.uses < IssuedToken.max_uses),
    )
    .values(uses=IssuedToken.uses + 1, last_used_at=bindparam("b_now"))
    .returning(IssuedToken.uses)
    .execution_options(synchronize_session=False)
)


def take_use(session: Session, jti: str, *, now: datetime) -> int | None:
    """Count one use if the token is live and under ``max_uses``; the new count, or ``None``.

    One statement: concurrent redemptions queue on the row lock and each re-evaluates the
    ``WHERE`` after the one before it committed, so no two can take the last use.
    """
    uses: int | None = _core(session, _TAKE_USE, {"b_jti": jti, "b_now": now}).scalar()
    return uses


@cache
def _upserts(dialect: str) -> tuple[Any, Any]:
    """(file start, counter charge) for one dialect, built once."""
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    start = (
        ins(TokenFileStart)
        .values(jti=bindparam("b_jti"), path=bindparam("b_path"), started_at=bindparam("b_now"))
        .on_conflict_do_nothing(index_elements=["jti", "path"])
        # RETURNING, not rowcount: with psycopg the rowcount of a no-op insert is not 0.
        .returning(TokenFileStart.jti)
    )
    counter = ins(QuotaCounter).values(
        key=bindparam("b_key"), window_start=bindparam("b_start"), amount=bindparam("b_amount")
    )
    charge = counter.on_conflict_do_update(
        index_elements=["key", "window_start"],
        set_={"amount": QuotaCounter.amount + counter.excluded.amount},
    ).returning(QuotaCounter.amount)
    return start, charge


def start_file(session: Session, jti: str, path: str, *, now: datetime) -> bool:
    """Record the first redemption of ``path`` with ``jti``; ``False`` if it was started."""
    stmt = _upserts(session.get_bind().dialect.name)[0]
    params = {"b_jti": jti, "b_path": path, "b_now": now}
    return _core(session, stmt, params).scalar_one_or_none() is not None


def add_to_counter(session: Session, key: str, window_start: datetime, amount: int) -> int:
    """Add ``amount`` to a fixed-window counter; the window's new total."""
    stmt = _upserts(session.get_bind().dialect.name)[1]
    params = {"b_key": key, "b_start": window_start, "b_amount": amount}
    total: int = _core(session, stmt, params).scalar_one()
    return total


def drop_old_windows(session: Session, key: str, before: datetime) -> None:
    session.execute(
        delete(QuotaCounter).where(QuotaCounter.key == key, QuotaCounter.window_start < before)
    )
