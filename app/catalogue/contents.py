"""The catalogue as an admin reads it page by page: models with their latest published
release, a model's releases with their file counts and sizes, and everything a release holds
(components, their stages, their files) — each a fixed number of statements, whatever the
catalogue's size. The console's admin pages read through here, never the repository."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.catalogue import repository as repo
from app.models import Component, Model, Release, ReleaseFile, Stage


def models_page(
    session: Session, *, after: int | None, limit: int
) -> tuple[Sequence[Model], dict[int, Release]]:
    """Models in id order, and the latest published release of each (by model id)."""
    rows = repo.models_page(session, after=after, limit=limit)
    return rows, repo.latest_published_versions(session, [m.id for m in rows])


def releases_page(
    session: Session, model_id: int, *, after: int | None, limit: int, published_only: bool
) -> Sequence[Release]:
    return repo.releases_page(
        session, model_id, after=after, limit=limit, published_only=published_only
    )


def release_stats(session: Session, release_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Each release's file count and total size."""
    return repo.release_stats(session, release_ids)


@dataclass
class ReleaseContents:
    components: list[Component]
    stages: dict[int, list[Stage]]  # by component id, in time order
    files: dict[int, list[ReleaseFile]] = field(default_factory=dict)  # by component id


def release_contents(session: Session, release_id: int) -> ReleaseContents:
    """A release's components, their stages and their files: three statements."""
    comps = list(repo.components(session, release_id))
    files: dict[int, list[ReleaseFile]] = defaultdict(list)
    for f in repo.files(session, release_id):
        files[f.component_id].append(f)
    return ReleaseContents(comps, repo.stages_for(session, [c.id for c in comps]), dict(files))
