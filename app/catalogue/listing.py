"""The catalogue as a caller browses it: the models they may know about, page by page,
optionally searched, each with its latest release they may know about and how much of it
they may download now (the console's catalogue, ``GET /v1/models``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.catalogue import repository as repo
from app.catalogue.visibility import latest_visible_releases, view_components, visible_models
from app.models import Model, Release
from app.policy.principals import Principal
from app.policy.tiers import Tier


@dataclass(frozen=True)
class Listed:
    model: Model
    latest: Release | None
    clearance: Tier


def visible_models_page(
    session: Session,
    principal: Principal,
    *,
    after: int | None,
    limit: int,
    now: datetime,
    search: str | None = None,
) -> tuple[list[Listed], int | None]:
    """Up to ``limit`` models the caller may know about after id ``after`` (matching
    ``search`` in the id or display name), and the id to continue after (``None``: the
    end). Hidden models are skipped, so pages are read until this one is full."""
    items: list[Listed] = []
    while len(items) < limit:
        batch = repo.models_page(session, after=after, limit=limit, search=search)
        if not batch:
            return items, None
        visible = visible_models(session, principal, batch, now=now)
        latest = latest_visible_releases(session, principal, batch, now=now)
        for m in batch:
            after = m.id
            clearance = visible.get(m.id)
            if clearance is None:
                continue
            items.append(Listed(m, latest.get(m.id), clearance))
            if len(items) == limit:
                break
        if len(batch) < limit and after == batch[-1].id:
            return items, None
    return items, after


@dataclass(frozen=True)
class Openness:
    downloadable: int  # components the caller may download now
    visible: int  # components the caller may know about


def openness(session: Session, listed: Sequence[Listed], *, now: datetime) -> dict[int, Openness]:
    """For each listed model with a release: how many of its latest release's components
    the caller may download now, of those they may know about (three queries in all)."""
    releases = [x for x in listed if x.latest is not None]
    comps = repo.components_for_releases(session, [x.latest.id for x in releases if x.latest])
    stages = repo.stages_for(session, [c.id for c in comps])
    out: dict[int, Openness] = {}
    for x in releases:
        assert x.latest is not None
        own = [c for c in comps if c.release_id == x.latest.id]
        views = [
            v
            for v in view_components(session, own, clearance=x.clearance, now=now, stages=stages)
            if v.visible
        ]
        out[x.model.id] = Openness(sum(v.downloadable for v in views), len(views))
    return out
