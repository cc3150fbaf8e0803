"""The access rule applied to catalogue reads: what a caller may see and download now.

- Admins see everything, drafts included.
- Everyone else sees only published releases, and a model only once it is *announced*: one
  of its published components is above ``internal`` now, or the caller's clearance for it is
  above ``open`` (a partner agreement or an access grant names it explicitly). Likewise a
  release only once one of its components is above ``internal``.
- ``internal`` components are invisible to non-staff; components not yet open to the caller
  show their name, tier and next lift, but no files.
- An unknown model and a model the caller may not know about give the same 404, after the
  same queries: a missing model is looked up as an unannounced one would be (with an id no
  row has), so the answer takes as long either way (app/disclosure.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.holdings import clearance_for, clearances_for
from app.catalogue import repository as repo
from app.errors import AppError
from app.models import Component, Model, Release, Stage
from app.policy.principals import Principal
from app.policy.schedule import ScheduleState, effective_tier, next_stage, opens_to
from app.policy.tiers import Tier, may_download
from app.refusals import Reason, refusal


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
    session: Session | None,
    components: Sequence[Component],
    *,
    clearance: Tier,
    now: datetime,
    stages: Mapping[int, Sequence[Stage]] | None = None,
) -> list[ComponentView]:
    """How the caller sees each component now; ``stages`` (by component id) when already
    read (then no session is needed)."""
    if stages is None:
        assert session is not None
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


# An id no model has: what a missing model is looked up as (ids start at 1).
NO_MODEL = 0


def model_not_found(namespace: str, name: str) -> AppError:
    # Same words for "does not exist" and "you may not know it exists".
    return refusal(Reason.MODEL_NOT_FOUND, f"model {namespace}/{name} not found")


def announced_release_ids(
    session: Session, releases: Sequence[Release], *, now: datetime
) -> set[int]:
    """Ids of the releases with a component above ``internal`` now: the only releases
    non-staff may learn exist (an unannounced release answers like an unknown one)."""
    return _announced(*_schedules(session, releases), now=now)


def _schedules(
    session: Session, releases: Sequence[Release]
) -> tuple[Sequence[Component], dict[int, list[Stage]]]:
    """The components of ``releases`` and their stages, by component id."""
    comps = repo.components_for_releases(session, [r.id for r in releases])
    return comps, repo.stages_for(session, [c.id for c in comps])


def _announced(
    comps: Sequence[Component], stages: Mapping[int, Sequence[Stage]], *, now: datetime
) -> set[int]:
    return {
        c.release_id
        for c in comps
        if effective_tier(schedule_state(c, stages[c.id]), now) != Tier.INTERNAL
    }


def announced_models(session: Session, models: Sequence[Model], *, now: datetime) -> set[int]:
    """Ids of the models with a published component above ``internal`` now."""
    if not models:
        return set()
    published = published_releases(session, [m.id for m in models])
    announced = announced_release_ids(session, published, now=now)
    return {r.model_id for r in published if r.id in announced}


def published_releases(session: Session, model_ids: list[int]) -> Sequence[Release]:
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
    """The model and the caller's clearance for it, or the same 404 for unknown and hidden,
    after the same queries."""
    model = repo.model_by_id(session, namespace, name)
    clearance = clearance_for(session, principal, _id_of(model), now=now)
    if clearance == Tier.OPEN:
        announced = _announced_of(session, _id_of(model), now=now).releases
        if model is None or not announced:
            raise model_not_found(namespace, name)
    if model is None:  # only staff get here: their clearance is the same for any id
        raise model_not_found(namespace, name)
    return model, clearance


def _id_of(model: Model | None) -> int:
    return NO_MODEL if model is None else model.id


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
    if version == "main":
        if staff:
            rel = repo.latest_published(session, model.id)
        else:
            rel = _named(_announced_of(session, model.id, now=now).releases, version)
        if rel is None:
            raise release_not_found(model, version)
        return rel
    rel = _by_version(session, model, version)
    if rel is None or (
        not staff
        and (rel.status != "published" or not announced_release_ids(session, [rel], now=now))
    ):
        raise release_not_found(model, version)
    return rel


def visible_release_views(
    session: Session,
    principal: Principal,
    model: Model,
    version: str,
    *,
    clearance: Tier,
    now: datetime,
) -> tuple[Release, list[ComponentView]]:
    """:func:`visible_release` and its components as the caller sees them now, reading the
    components and their schedules once: a version's views say whether it is announced
    (one of them above ``internal``), so they are not read a second time to decide that."""
    if version == "main" and not principal.is_admin:
        # Deciding which release is the latest announced read every published release's
        # components and stages already: the views are made from those.
        announced = _announced_of(session, model.id, now=now)
        latest = _named(announced.releases, version)
        if latest is None:
            raise release_not_found(model, version)
        return latest, announced.views(session, latest, clearance=clearance, now=now)
    if version == "main":
        rel = visible_release(session, principal, model, version, now=now)
        return rel, _views_of(session, rel, clearance=clearance, now=now)
    found = _by_version(session, model, version)
    if found is None:
        raise release_not_found(model, version)
    views = _views_of(session, found, clearance=clearance, now=now)
    if not principal.is_admin and (
        found.status != "published" or all(v.tier == Tier.INTERNAL for v in views)
    ):
        raise release_not_found(model, version)
    return found, views


def visible_model_release(
    session: Session,
    principal: Principal,
    namespace: str,
    name: str,
    version: str,
    *,
    now: datetime,
) -> tuple[Model, Tier, Release, list[ComponentView]]:
    """:func:`visible_model` then :func:`visible_release_views`, with the same answers and
    the same 404s (``model_not_found``, then ``release_not_found``).

    For a caller whose clearance is ``open`` (anonymous, or holding no grant or agreement for
    the model: most downloads of open weights) the model is visible only if announced, which
    takes reading every published release's components and stages; those same rows say
    which release ``version`` names and how its components look, so they are read once."""
    model = repo.model_by_id(session, namespace, name)
    clearance = clearance_for(session, principal, _id_of(model), now=now)
    if clearance != Tier.OPEN:
        if model is None:  # staff: their clearance is the same for any id
            raise model_not_found(namespace, name)
        rel, views = visible_release_views(
            session, principal, model, version, clearance=clearance, now=now
        )
        return model, clearance, rel, views
    # The same reads whether the model is missing or not announced (an id no row has).
    announced = _announced_of(session, _id_of(model), now=now)
    if model is None or not announced.releases:
        raise model_not_found(namespace, name)
    found = _named(announced.releases, version)
    if found is None:
        raise release_not_found(model, version)
    return model, clearance, found, announced.views(session, found, clearance=clearance, now=now)


@dataclass(frozen=True)
class _Announced:
    """A model's published releases announced now, newest first, and what decided it: every
    published release's components and their stages."""

    releases: list[Release]
    comps: Sequence[Component]
    stages: dict[int, list[Stage]]

    def views(
        self, session: Session, rel: Release, *, clearance: Tier, now: datetime
    ) -> list[ComponentView]:
        """``rel``'s components as the caller sees them, from the schedules already read."""
        own = sorted((c for c in self.comps if c.release_id == rel.id), key=lambda c: c.name)
        return view_components(session, own, clearance=clearance, now=now, stages=self.stages)


def _announced_of(session: Session, model_id: int, *, now: datetime) -> _Announced:
    """Three queries, whatever the model (or its absence: ``NO_MODEL``) holds."""
    published = published_releases(session, [model_id])
    comps = repo.published_components(session, model_id)
    stages = repo.published_stages(session, model_id, [c.id for c in comps])
    shown = _announced(comps, stages, now=now)
    return _Announced([r for r in published if r.id in shown], comps, stages)


def _named(releases: Sequence[Release], version: str) -> Release | None:
    """Of ``releases`` (newest first), the one ``version`` names: ``main`` is the newest;
    otherwise, as :func:`_by_version`, a version first, then a revision id."""
    if version == "main":
        return releases[0] if releases else None
    found = next((r for r in releases if r.version == version), None)
    if found is None and len(version) == 40:
        found = next((r for r in releases if r.revision == version), None)
    return found


def _views_of(
    session: Session, rel: Release, *, clearance: Tier, now: datetime
) -> list[ComponentView]:
    return view_components(session, repo.components(session, rel.id), clearance=clearance, now=now)


def _by_version(session: Session, model: Model, version: str) -> Release | None:
    """A release by version, or by revision id (40 hex)."""
    rel = repo.release(session, model.id, version)
    if rel is None and len(version) == 40:
        rel = repo.release_by_revision(session, model.id, version)
    return rel


def release_not_found(model: Model, version: str) -> AppError:
    return refusal(Reason.RELEASE_NOT_FOUND, f"release {version} of {model.repo_id} not found")


def latest_visible_releases(
    session: Session, principal: Principal, models: Sequence[Model], *, now: datetime
) -> dict[int, Release]:
    """Each model's latest published release the caller may know about (what ``main``
    resolves to for it), in a constant number of queries for the whole batch."""
    if not models:
        return {}
    published = published_releases(session, [m.id for m in models])
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
