"""Every query of the tokens domain: token rows, use counting, per-file starts, quota counters.

The writes that must hold under concurrency never race: use counts are computed from token
rows read ``FOR UPDATE`` (:func:`lock_tokens`; on SQLite, ``BEGIN IMMEDIATE`` already holds
the database) and written back in the same transaction; quota counts are
``INSERT … ON CONFLICT DO UPDATE … RETURNING``, atomic on SQLite and PostgreSQL. The
redemption's statements are set-based: one per batch of downloads, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import (
    Component,
    IssuedToken,
    Model,
    Partner,
    Release,
    ReleaseFile,
    Stage,
    TokenFileStart,
    User,
)


def add_token(session: Session, row: IssuedToken) -> None:
    session.add(row)
    session.flush()


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


@dataclass(frozen=True)
class TokenFacts:
    """A token row joined to its holder and its release: what a redemption checks."""

    jti: str
    kind: str
    subject: str
    revoked_at: datetime | None
    max_uses: int | None
    uses: int
    model_id: int | None
    release_id: int | None
    revision: str | None
    user_role: str | None
    user_disabled_at: datetime | None
    partner_name: str | None
    partner_disabled_at: datetime | None


@dataclass(frozen=True)
class FileFacts:
    """A file of a release and the component it belongs to."""

    release_id: int
    path: str
    sha256: str
    size: int
    component_id: int
    component_name: str
    held_at: datetime | None
    restricted_tier: str | None


def _core(session: Session, stmt: Any, params: Any) -> Any:
    """Run a statement on the session's connection, in its transaction, without the ORM's
    execution machinery (none of these statements loads or changes mapped objects)."""
    return session.connection().execute(stmt, params)


# The redemption's statements are built once: constructing a select() costs more CPU than
# executing it against a warm PostgreSQL, and these run for every batch of downloads.
_TOKENS = (
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
        User.role,
        User.disabled_at,
        Partner.name,
        Partner.disabled_at,
    )
    .outerjoin(Release, Release.id == IssuedToken.release_id)
    .outerjoin(User, User.id == IssuedToken.user_id)
    .outerjoin(Partner, Partner.id == IssuedToken.partner_id)
    .where(IssuedToken.jti.in_(bindparam("jtis", expanding=True)))
    # In jti order, so concurrent batches (other replicas) lock rows in the same order.
    .order_by(IssuedToken.jti)
    .with_for_update(of=IssuedToken)
)


def lock_tokens(session: Session, jtis: Iterable[str]) -> dict[str, TokenFacts]:
    """The rows of ``jtis`` (those that exist), locked until the transaction ends: the uses
    read here are the ones a redemption may count on (and SQLite's ``BEGIN IMMEDIATE``
    already holds the whole database)."""
    rows = _core(session, _TOKENS, {"jtis": sorted(set(jtis))})
    return {row[0]: TokenFacts(*row) for row in rows}


_FILES = (
    select(
        ReleaseFile.release_id,
        ReleaseFile.path,
        ReleaseFile.sha256,
        ReleaseFile.size,
        Component.id,
        Component.name,
        Component.held_at,
        Component.restricted_tier,
    )
    .join(Component, Component.id == ReleaseFile.component_id)
    .where(
        ReleaseFile.release_id.in_(bindparam("rids", expanding=True)),
        ReleaseFile.path.in_(bindparam("paths", expanding=True)),
    )
)


def files_of(
    session: Session, wanted: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], FileFacts]:
    """The files at ``(release_id, path)``, with their components; absent ones are missing."""
    pairs = set(wanted)
    if not pairs:
        return {}
    rids = sorted({r for r, _ in pairs})
    paths = sorted({p for _, p in pairs})
    found = (FileFacts(*row) for row in _core(session, _FILES, {"rids": rids, "paths": paths}))
    return {(f.release_id, f.path): f for f in found if (f.release_id, f.path) in pairs}


_STAGES_OF_MANY = (
    select(Stage.component_id, Stage.tier, Stage.at)
    .where(Stage.component_id.in_(bindparam("cids", expanding=True)))
    .order_by(Stage.component_id, Stage.at)
)


def stages_of_many(
    session: Session, component_ids: Iterable[int]
) -> dict[int, list[tuple[str, datetime]]]:
    cids = sorted(set(component_ids))
    out: dict[int, list[tuple[str, datetime]]] = {c: [] for c in cids}
    if cids:
        for cid, tier, at in _core(session, _STAGES_OF_MANY, {"cids": cids}):
            out[cid].append((tier, at))
    return out


_SET_USES = (
    update(IssuedToken)
    .where(IssuedToken.jti == bindparam("b_jti"))
    .values(uses=bindparam("b_uses"), last_used_at=bindparam("b_now"))
    .execution_options(synchronize_session=False)
)


def set_uses(session: Session, counts: Iterable[tuple[str, int, datetime]]) -> None:
    """Write new use counts ``(jti, uses, last used at)`` of rows :func:`lock_tokens` locked
    (so the counts computed from the locked values cannot race)."""
    params = [{"b_jti": j, "b_uses": u, "b_now": t} for j, u, t in counts]
    if params:
        _core(session, _SET_USES, params)


_STARTS = select(
    TokenFileStart.jti, TokenFileStart.path, TokenFileStart.uses, TokenFileStart.resumed
).where(
    TokenFileStart.jti.in_(bindparam("jtis", expanding=True)),
    TokenFileStart.path.in_(bindparam("paths", expanding=True)),
)


def started_files(
    session: Session, wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """Which ``(jti, path)`` have been started already, with the uses taken on each and the
    bytes its resumes handed out (read under the tokens' row locks)."""
    pairs = set(wanted)
    if not pairs:
        return {}
    params = {"jtis": sorted({j for j, _ in pairs}), "paths": sorted({p for _, p in pairs})}
    return {
        (j, p): (int(u), int(r))
        for j, p, u, r in _core(session, _STARTS, params)
        if (j, p) in pairs
    }


@dataclass(frozen=True)
class FileUse:
    """A started file's counts as a batch leaves them (written whole: the token's row lock
    serialises every batch that could change them)."""

    jti: str
    path: str
    at: datetime  # when first started, for a new row
    uses: int
    resumed: int


def set_file_uses(session: Session, files: Iterable[FileUse]) -> None:
    params = [
        {"b_jti": f.jti, "b_path": f.path, "b_now": f.at, "b_uses": f.uses, "b_resumed": f.resumed}
        for f in files
    ]
    if params:
        _core(session, _start_upsert(session.get_bind().dialect.name), params)


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


@cache
def _start_upsert(dialect: str) -> Any:
    """The per-file start upsert for one dialect, built once."""
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Only ever written under the token's row lock, from the values read under it.
    values = ins(TokenFileStart).values(
        jti=bindparam("b_jti"),
        path=bindparam("b_path"),
        started_at=bindparam("b_now"),
        uses=bindparam("b_uses"),
        resumed=bindparam("b_resumed"),
    )
    return values.on_conflict_do_update(
        index_elements=["jti", "path"],
        set_={"uses": values.excluded.uses, "resumed": values.excluded.resumed},
    )
