"""The catalogue's reads behind its routes (and the console's): a model by name for admins,
a page of a model's releases, the file counts and sizes a caller may see, and a release's
components as admins see them. Routes call these instead of the repository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.catalogue import repository as repo
from app.catalogue import schemas
from app.catalogue.names import check_model_id
from app.catalogue.visibility import model_not_found, view_components
from app.models import Component, Model, Release
from app.policy.principals import Principal
from app.policy.tiers import Tier


def model_named(session: Session, namespace: str, name: str) -> Model:
    """The model of that name, whoever asks (404 if there is none): for admins' filters."""
    model = repo.model_by_id(session, namespace, name)
    if model is None:
        raise model_not_found(namespace, name)
    return model


def admin_model(session: Session, namespace: str, name: str) -> Model:
    """The model, for an admin route. Admin routes say "invalid name" (422) rather than "not
    found" for ids that could never exist; there is nothing to hide from an admin."""
    check_model_id(namespace, name)
    return model_named(session, namespace, name)


def latest_published(session: Session, model: Model) -> Release | None:
    return repo.latest_published(session, model.id)


def releases_page(
    session: Session, model: Model, *, after: int | None, limit: int, published_only: bool
) -> Sequence[Release]:
    return repo.releases_page(
        session, model.id, after=after, limit=limit, published_only=published_only
    )


def release_components(session: Session, rel: Release) -> list[Component]:
    return list(repo.components(session, rel.id))


def visible_stats(
    session: Session,
    principal: Principal,
    clearance: Tier,
    rels: Sequence[Release],
    *,
    now: datetime,
) -> dict[int, tuple[int, int]]:
    """File count and size per release, over what the caller may download now: the size of
    a component still under embargo is not the caller's to know."""
    ids = [r.id for r in rels]
    if principal.is_admin:
        return repo.release_stats(session, ids)
    views = view_components(
        session, repo.components_for_releases(session, ids), clearance=clearance, now=now
    )
    allowed = [v.component.id for v in views if v.downloadable]
    return repo.release_stats(session, ids, component_ids=allowed)


def component_outs(
    session: Session, rel: Release, comps: list[Component], *, now: datetime
) -> list[schemas.ComponentOut]:
    """The components as an admin sees them: schedule, hold, restriction, file count."""
    counts = repo.file_counts(session, rel.id)
    views = view_components(session, comps, clearance=Tier.INTERNAL, now=now)
    return [
        schemas.ComponentOut(
            name=v.component.name,
            tier=v.tier,
            schedule=[schemas.StageOut(tier=s.tier, at=s.at) for s in v.state.stages],
            next=schemas.StageOut(tier=v.next_tier, at=v.next_at)
            if v.next_tier and v.next_at
            else None,
            held=v.component.held_at is not None,
            hold_reason=v.component.hold_reason,
            restricted_tier=Tier(v.component.restricted_tier)
            if v.component.restricted_tier
            else None,
            restrict_reason=v.component.restrict_reason,
            file_count=counts.get(v.component.id, 0),
        )
        for v in views
    ]
