"""Every catalogue query lives here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.models import Component, Model, Release, ReleaseFile, Stage, StoredObject


def model_by_id(session: Session, namespace: str, name: str) -> Model | None:
    return session.scalar(select(Model).where(Model.namespace == namespace, Model.name == name))


def models_page(
    session: Session, *, after: int | None, limit: int, search: str | None = None
) -> Sequence[Model]:
    """Models in id order; ``search``: only those whose id or display name contains it
    (any case)."""
    q = select(Model).order_by(Model.id).limit(limit)
    if after is not None:
        q = q.where(Model.id > after)
    if search:
        needle = search.lower()
        q = q.where(
            or_(
                func.lower(Model.namespace + "/" + Model.name).contains(needle, autoescape=True),
                func.lower(Model.display_name).contains(needle, autoescape=True),
            )
        )
    return session.scalars(q).all()


def release(session: Session, model_id: int, version: str) -> Release | None:
    return session.scalar(
        select(Release).where(Release.model_id == model_id, Release.version == version)
    )


def release_by_revision(session: Session, model_id: int, revision: str) -> Release | None:
    return session.scalar(
        select(Release).where(Release.model_id == model_id, Release.revision == revision)
    )


def latest_published(session: Session, model_id: int) -> Release | None:
    return session.scalar(
        select(Release)
        .where(Release.model_id == model_id, Release.status == "published")
        .order_by(Release.published_at.desc(), Release.id.desc())
        .limit(1)
    )


def published_releases(session: Session, model_id: int) -> Sequence[Release]:
    """A model's published releases, newest first."""
    return session.scalars(
        select(Release)
        .where(Release.model_id == model_id, Release.status == "published")
        .order_by(Release.published_at.desc(), Release.id.desc())
    ).all()


def latest_published_versions(session: Session, model_ids: Sequence[int]) -> dict[int, Release]:
    if not model_ids:
        return {}
    rows = session.scalars(
        select(Release)
        .where(Release.model_id.in_(model_ids), Release.status == "published")
        .order_by(Release.model_id, Release.published_at, Release.id)
    ).all()
    return {r.model_id: r for r in rows}  # last one per model wins


def releases_page(
    session: Session, model_id: int, *, after: int | None, limit: int, published_only: bool
) -> Sequence[Release]:
    q = select(Release).where(Release.model_id == model_id).order_by(Release.id).limit(limit)
    if after is not None:
        q = q.where(Release.id > after)
    if published_only:
        q = q.where(Release.status == "published")
    return session.scalars(q).all()


def release_stats(
    session: Session, release_ids: Sequence[int], *, component_ids: Sequence[int] | None = None
) -> dict[int, tuple[int, int]]:
    """File count and total size per release; only over ``component_ids`` when given."""
    if not release_ids:
        return {}
    q = (
        select(ReleaseFile.release_id, func.count(), func.coalesce(func.sum(ReleaseFile.size), 0))
        .where(ReleaseFile.release_id.in_(release_ids))
        .group_by(ReleaseFile.release_id)
    )
    if component_ids is not None:
        q = q.where(ReleaseFile.component_id.in_(component_ids))
    rows = session.execute(q).all()
    return {rid: (int(n), int(total)) for rid, n, total in rows}


def components(session: Session, release_id: int) -> Sequence[Component]:
    return session.scalars(
        select(Component).where(Component.release_id == release_id).order_by(Component.name)
    ).all()


def components_for_releases(session: Session, release_ids: Sequence[int]) -> Sequence[Component]:
    if not release_ids:
        return []
    return session.scalars(select(Component).where(Component.release_id.in_(release_ids))).all()


def published_components(session: Session, model_id: int) -> Sequence[Component]:
    """The components of a model's published releases (one query, whatever they number)."""
    return session.scalars(
        select(Component)
        .join(Release, Release.id == Component.release_id)
        .where(Release.model_id == model_id, Release.status == "published")
    ).all()


def published_stages(
    session: Session, model_id: int, component_ids: Sequence[int]
) -> dict[int, list[Stage]]:
    """The stages of :func:`published_components` (``component_ids``), by component: one
    query even when there are none, so a model with nothing published costs what any other
    does to look at."""
    out: dict[int, list[Stage]] = {cid: [] for cid in component_ids}
    q = (
        select(Stage)
        .join(Component, Component.id == Stage.component_id)
        .join(Release, Release.id == Component.release_id)
        .where(Release.model_id == model_id, Release.status == "published")
        .order_by(Stage.at)
    )
    for st in session.scalars(q):
        out.setdefault(st.component_id, []).append(st)
    return out


def component(session: Session, release_id: int, name: str) -> Component | None:
    return session.scalar(
        select(Component).where(Component.release_id == release_id, Component.name == name)
    )


def stages_for(session: Session, component_ids: Sequence[int]) -> dict[int, list[Stage]]:
    out: dict[int, list[Stage]] = {cid: [] for cid in component_ids}
    if not component_ids:
        return out
    for st in session.scalars(
        select(Stage).where(Stage.component_id.in_(component_ids)).order_by(Stage.at)
    ):
        out[st.component_id].append(st)
    return out


def files(session: Session, release_id: int) -> Sequence[ReleaseFile]:
    return session.scalars(
        select(ReleaseFile).where(ReleaseFile.release_id == release_id).order_by(ReleaseFile.path)
    ).all()


def file_by_path(session: Session, release_id: int, path: str) -> ReleaseFile | None:
    return session.scalar(
        select(ReleaseFile).where(ReleaseFile.release_id == release_id, ReleaseFile.path == path)
    )


def file_counts(session: Session, release_id: int) -> dict[int, int]:
    rows = session.execute(
        select(ReleaseFile.component_id, func.count())
        .where(ReleaseFile.release_id == release_id)
        .group_by(ReleaseFile.component_id)
    ).all()
    return {cid: int(n) for cid, n in rows}


def stored_object(session: Session, sha256: str, *, lock: bool = False) -> StoredObject | None:
    """The object's row; with ``lock``, read under ``FOR SHARE`` (PostgreSQL), which keeps
    the collector (:mod:`app.catalogue.collect`) off it until commit."""
    if not lock:
        return session.get(StoredObject, sha256)
    query = select(StoredObject).where(StoredObject.sha256 == sha256)
    return session.execute(
        query.with_for_update(read=True).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def object_references(session: Session, sha256: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(ReleaseFile).where(ReleaseFile.sha256 == sha256)
        )
        or 0
    )


def license_hashes(session: Session, model_ids: Sequence[int]) -> dict[int, str]:
    """Each model's current license SHA-256 (to tell requests that accepted an older one)."""
    if not model_ids:
        return {}
    rows = session.execute(
        select(Model.id, Model.license_sha256).where(Model.id.in_(model_ids))
    ).all()
    return {int(i): str(h) for i, h in rows}
