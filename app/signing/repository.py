"""Queries of the signing package."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Model, Release, ReleaseFile, ReleaseSignature, StoredObject


def stored_object_locked(session: Session, sha256: str) -> StoredObject | None:
    """The object's row under ``FOR SHARE`` (PostgreSQL): the storage collector
    (app.catalogue.collect) keeps off it until commit, as it does for an upload's."""
    query = select(StoredObject).where(StoredObject.sha256 == sha256)
    return session.execute(
        query.with_for_update(read=True).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def signatures(session: Session, release_id: int) -> list[ReleaseSignature]:
    return list(
        session.scalars(
            select(ReleaseSignature)
            .where(ReleaseSignature.release_id == release_id)
            .order_by(ReleaseSignature.id)
        )
    )


def signatures_with_paths(
    session: Session, release_id: int
) -> Sequence[tuple[ReleaseSignature, str]]:
    rows = session.execute(
        select(ReleaseSignature, ReleaseFile.path)
        .join(ReleaseFile, ReleaseFile.id == ReleaseSignature.file_id)
        .where(ReleaseSignature.release_id == release_id)
        .order_by(ReleaseFile.path)
    ).all()
    return [(sig, path) for sig, path in rows]


def revoked(session: Session) -> Sequence[tuple[ReleaseSignature, Release, Model]]:
    """Every revoked signature with its release and model, oldest revocation first."""
    rows = session.execute(
        select(ReleaseSignature, Release, Model)
        .join(Release, Release.id == ReleaseSignature.release_id)
        .join(Model, Model.id == Release.model_id)
        .where(ReleaseSignature.revoked_at.is_not(None))
        .order_by(ReleaseSignature.revoked_at, ReleaseSignature.id)
    ).all()
    return [(sig, rel, model) for sig, rel, model in rows]
