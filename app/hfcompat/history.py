"""A model's releases as git refs and commits, for ``list_repo_refs`` and
``list_repo_commits``: each published release the caller may know about is a tag named
after its version, ``main`` a branch at the latest one, and each points at the commit of
the release as the caller sees it now (app/hfcompat/views.py). Commits say what they are:
a release whole, or the part of it open to the caller."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.catalogue import repository as repo
from app.catalogue.visibility import (
    ComponentView,
    announced_release_ids,
    view_components,
    visible_model,
)
from app.errors import NotFound
from app.hfcompat import errors, schemas
from app.hfcompat.service import HfRelease, current_view
from app.policy.principals import Principal


def release_views(
    session: Session, principal: Principal, namespace: str, name: str, *, now: datetime
) -> list[HfRelease]:
    """Every published release of the model the caller may know about, newest first, as
    they see it now."""
    try:
        model, clearance = visible_model(session, principal, namespace, name, now=now)
    except NotFound as e:
        raise errors.repo_not_found(f"{namespace}/{name}") from e
    rels = [r for r in repo.published_releases(session, model.id) if r.revision is not None]
    if not principal.is_admin:
        shown = announced_release_ids(session, rels, now=now)
        rels = [r for r in rels if r.id in shown]
    comps = repo.components_for_releases(session, [r.id for r in rels])
    seen = view_components(session, comps, clearance=clearance, now=now)
    by_release: dict[int, list[ComponentView]] = defaultdict(list)
    for v in seen:
        by_release[v.component.release_id].append(v)
    return [
        current_view(session, principal, model, r, clearance, by_release[r.id], now=now)
        for r in rels
    ]


def refs(targets: Sequence[HfRelease]) -> schemas.GitRefs:
    tags = [
        schemas.GitRef(
            name=t.release.version, ref=f"refs/tags/{t.release.version}", targetCommit=t.revision
        )
        for t in targets
    ]
    branches = (
        [schemas.GitRef(name="main", ref="refs/heads/main", targetCommit=targets[0].revision)]
        if targets
        else []
    )
    return schemas.GitRefs(branches=branches, tags=tags, converts=[], pullRequests=[])


def commit(target: HfRelease) -> schemas.GitCommit:
    rel = target.release
    assert rel.published_at is not None  # published
    names = sorted(
        v.component.name
        for v in target.views.values()
        if (target.pinned is None and v.downloadable)
        or (target.pinned is not None and v.component.id in target.pinned)
    )
    if target.revision == rel.revision:
        title = f"Release {rel.version}"
        message = f"Release {rel.version} of {target.model.repo_id}, all of it."
    else:
        title = f"Release {rel.version}, the part open to you"
        message = (
            f"The files of {', '.join(names) or 'no component'} in release {rel.version} of "
            f"{target.model.repo_id}: the part open to you when this id was handed out. "
            f"The whole release is revision {rel.revision}."
        )
    return schemas.GitCommit(
        id=target.revision,
        authors=[schemas.GitAuthor(user="weightgate")],
        date=rel.published_at,
        title=title,
        message=message,
    )


def history(targets: Sequence[HfRelease], start: HfRelease) -> list[schemas.GitCommit]:
    """The commits reachable from ``start``: it, then the releases published before it."""
    older = [
        t
        for t in targets
        if t.release.id != start.release.id
        and (t.release.published_at, t.release.id) < (start.release.published_at, start.release.id)
    ]
    return [commit(start), *(commit(t) for t in older)]
