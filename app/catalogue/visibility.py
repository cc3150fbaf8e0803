"""The access rule applied to catalogue reads: what a caller may see and download now.

- Admins see everything, drafts included.
- Everyone else sees only published releases, and a model only once it is *announced*: one
  of its published components is above ``internal`` now, or the caller's clearance for it is
  above ``open`` (a partner agreement or an access grant names it explicitly).
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
from app.access.rule import clearance_for
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


def announced_models(session: Session, models: Sequence[Model], *, now: datetime) -> set[int]:
    """Ids of the models with a published component above ``internal`` now."""
    if not models:
        return set()
    published = {r.id: r.model_id for r in _published_releases(session, [m.id for m in models])}
    comps = repo.components_for_releases(session, list(published))
    stages = repo.stages_for(session, [c.id for c in comps])
    out: set[int] = set()
    for c in comps:
        if effective_tier(schedule_state(c, stages[c.id]), now) != Tier.INTERNAL:
            out.add(published[c.release_id])
    return out


def _published_releases(session: Session, model_ids: list[int]) -> Sequence[Release]:
    return session.scalars(
        select(Release).where(Release.model_id.in_(model_ids), Release.status == "published")
    ).all()


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


def visible_release(session: Session, principal: Principal, model: Model, version: str) -> Release:
    """A release by version, revision id, or ``main`` (latest published)."""
    if version == "main":
        rel = repo.latest_published(session, model.id)
    else:
        rel = repo.release(session, model.id, version)
        if rel is None and len(version) == 40:
            rel = repo.release_by_revision(session, model.id, version)
    if rel is None or (rel.status != "published" and not principal.is_admin):
        raise NotFound(f"release {version} of {model.repo_id} not found", code="release_not_found")
    return rel
