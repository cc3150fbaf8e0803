"""The access rule applied to catalogue reads: what a caller may see and download now.

- Admins see everything, drafts included.
- Everyone else sees only published releases, and a model only once it is *announced*: one
  of its published components is above ``internal`` now, or the caller's clearance for it is
  above ``open`` (a partner agreement or an access grant names it explicitly). Likewise a
  release only once one of its components is above ``internal``.
- ``internal`` components are invisible to non-staff; components not yet open to the caller
  show their name, tier and next lift, but no files.
- An unknown model and a model the caller may not know about give the same 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.principals import Principal
from app.access.rule import clearance_for, clearances_for
from app.access.tiers import Tier, may_download
from app.catalogue import repository as repo
from app.errors import NotFound
from app.models import Component, Model, Release, Stage
from app.schedule.evaluate import ScheduleState, effective_tier, next_stage, opens_to


@dataclass(frozen=True)
class ComponentView:
    component: Component
    state: ScheduleState
    tier: Tier
    downloadable: bool
    visible: bool
    next_tier: Tier | None
    next_at: datetime | None
    opens_to_caller_at: datetime | None


def schedule_state(component: Component, stages: Sequence[Stage]) -> ScheduleState:
    return ScheduleState.of(
        [(s.tier, s.at) for s in stages],
        held_at=component.held_at,
        restricted_tier=component.restricted_tier,
    )


def view_components(
    session: Session, components: Sequence[Component], *, clearance: Tier, now: datetime
) -> list[ComponentView]:
    stages = repo.stages_for(session, [c.id for c in components])
    views = []
    for c in components:
        state = schedule_state(c, stages[c.id])
        tier = effective_tier(state, now)
        nxt = next_stage(state, now)
        views.append(
            ComponentView(
                component=c,
                state=state,
                tier=tier,
                downloadable=may_download(clearance, tier),
                visible=clearance == Tier.INTERNAL or tier != Tier.INTERNAL,
                next_tier=nxt.tier if nxt else None,
                next_at=nxt.at if nxt else None,
                opens_to_caller_at=None
                if may_download(clearance, tier)
                else opens_to(state, now, clearance),
            )
        )
    return views


def model_not_found(namespace: str, name: str) -> NotFound:
    # Same words for "does not exist" and "you may not know it exists".
    return NotFound(f"model {namespace}/{name} not found", code="model_not_found")


def announced_release_ids(
    session: Session, releases: Sequence[Release], *, now: datetime
) -> set[int]:
    """Ids of the releases with a component above ``internal`` now: the only releases
    non-staff may learn exist (an unannounced release answers like an unknown one)."""
    if not releases:
        return set()
    comps = repo.components_for_releases(session, [r.id for r in releases])
    stages = repo.stages_for(session, [c.id for c in comps])
    return {
        c.release_id
        for c in comps
        if effective_tier(schedule_state(c, stages[c.id]), now) != Tier.INTERNAL
    }


def announced_models(session: Session, models: Sequence[Model], *, now: datetime) -> set[int]:
    """Ids of the models with a published component above ``internal`` now."""
    if not models:
        return set()
    published = _published_releases(session, [m.id for m in models])
    announced = announced_release_ids(session, published, now=now)
    return {r.model_id for r in published if r.id in announced}


def _published_releases(session: Session, model_ids: list[int]) -> Sequence[Release]:
    return session.scalars(
        select(Release)
        .where(Release.model_id.in_(model_ids), Release.status == "published")
        .order_by(Release.published_at.desc(), Release.id.desc())
    ).all()


def visible_models(
    session: Session, principal: Principal, models: Sequence[Model], *, now: datetime
) -> dict[int, Tier]:
    """The caller's clearance for each of ``models`` it may know about (the others are
    left out), in a constant number of queries for the whole batch."""
    clearances = clearances_for(session, principal, [m.id for m in models], now=now)
    unknown = [m for m in models if clearances[m.id] == Tier.OPEN]
    announced = announced_models(session, unknown, now=now)
    return {
        m.id: clearances[m.id] for m in models if clearances[m.id] != Tier.OPEN or m.id in announced
    }


def visible_model(
    session: Session, principal: Principal, namespace: str, name: str, *, now: datetime
) -> tuple[Model, Tier]:
    """The model and the caller's clearance for it, or the same 404 for unknown and hidden."""
    model = repo.model_by_id(session, namespace, name)
    if model is None:
        raise model_not_found(namespace, name)
    clearance = clearance_for(session, principal, model.id, now=now)
    if clearance == Tier.OPEN and model.id not in announced_models(session, [model], now=now):
        raise model_not_found(namespace, name)
    return model, clearance


def visible_release(
    session: Session,
    principal: Principal,
    model: Model,
    version: str,
    *,
    now: datetime,
) -> Release:
    """A release by version, revision id, or ``main`` (latest published).

    Non-staff see only published, *announced* releases: a release whose components are all
    still ``internal`` answers exactly like an unknown version, and ``main`` is the latest
    announced release.
    """
    staff = principal.is_admin
    rel: Release | None
    if version == "main":
        if staff:
            rel = repo.latest_published(session, model.id)
        else:
            published = _published_releases(session, [model.id])
            announced = announced_release_ids(session, published, now=now)
            rel = next((r for r in published if r.id in announced), None)
    else:
        rel = repo.release(session, model.id, version)
        if rel is None and len(version) == 40:
            rel = repo.release_by_revision(session, model.id, version)
    hidden = rel is None or (
        not staff
        and (rel.status != "published" or not announced_release_ids(session, [rel], now=now))
    )
    if hidden or rel is None:
        raise NotFound(f"release {version} of {model.repo_id} not found", code="release_not_found")
    return rel


def latest_visible_releases(
    session: Session, principal: Principal, models: Sequence[Model], *, now: datetime
) -> dict[int, Release]:
    """Each model's latest published release the caller may know about (what ``main``
    resolves to for it), in a constant number of queries for the whole batch."""
    if not models:
        return {}
    published = _published_releases(session, [m.id for m in models])
    shown = (
        {r.id for r in published}
        if principal.is_admin
        else announced_release_ids(session, published, now=now)
    )
    out: dict[int, Release] = {}
    for rel in published:  # newest first
        if rel.id in shown:
            out.setdefault(rel.model_id, rel)
    return out
