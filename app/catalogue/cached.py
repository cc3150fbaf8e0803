"""What the hot catalogue reads return, kept per process under the cache epoch
(app/freshness.py): a model's published releases, components, stages and files, and a
caller's grants and agreements for it.

The Hub routes (model info, tree, ``/resolve``) and the manifest read these on every
request, and they change only by an admin's hand (publish, a schedule edit, a hold, a
restriction, a grant, an agreement), each of which moves the epoch — in this process at
commit, on every replica within ``cache_check_seconds``. A lift that happens by the clock
needs none: the stages are kept, and each request evaluates them at its own ``now``
(:func:`app.catalogue.visibility.view_components`), as it always did.

Staff (admins) are answered from the database as before: they see drafts, which are
not kept here, and they are few. Missing models are kept too (as ``model is None``), so an
unknown name and a model the caller may not know about still take the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.auth.holdings import holdings
from app.catalogue import repository as repo
from app.catalogue.visibility import (
    NO_MODEL,
    ComponentView,
    model_not_found,
    published_releases,
    release_not_found,
    schedule_state,
    view_components,
    visible_model_release,
)
from app.freshness import EpochCache, Freshness
from app.models import Component, Model, Release, ReleaseFile, Stage
from app.parts import parts_of
from app.policy.clearance import Holdings
from app.policy.principals import Principal
from app.policy.schedule import effective_tier
from app.policy.tiers import Tier

T = TypeVar("T")


@dataclass(frozen=True)
class ModelFacts:
    """A model's published releases (newest first), their components and stages; detached
    rows, read-only."""

    model: Model | None
    published: list[Release]
    comps: list[Component]
    stages: dict[int, list[Stage]]

    def announced(self, now: datetime) -> list[Release]:
        """The published releases with a component above ``internal`` at ``now``."""
        shown = {
            c.release_id
            for c in self.comps
            if effective_tier(schedule_state(c, self.stages[c.id]), now) != Tier.INTERNAL
        }
        return [r for r in self.published if r.id in shown]

    def views(self, rel: Release, *, clearance: Tier, now: datetime) -> list[ComponentView]:
        own = sorted((c for c in self.comps if c.release_id == rel.id), key=lambda c: c.name)
        return view_components(None, own, clearance=clearance, now=now, stages=self.stages)


def _named(releases: Sequence[Release], version: str) -> Release | None:
    if version == "main":
        return releases[0] if releases else None
    found = next((r for r in releases if r.version == version), None)
    if found is None and len(version) == 40:
        found = next((r for r in releases if r.revision == version), None)
    return found


class CatalogueCache:
    def __init__(self, fresh: Freshness, max_models: int = 4096) -> None:
        self.fresh = fresh
        self._models: EpochCache[tuple[str, str], ModelFacts] = EpochCache(fresh, max_models)
        self._files: EpochCache[int, dict[str, ReleaseFile]] = EpochCache(fresh, max_models)
        self._holdings: EpochCache[tuple[str, int, int], Holdings] = EpochCache(fresh, 65_536)
        self._memo: EpochCache[tuple[str, ...], tuple[object]] = EpochCache(fresh, 65_536)

    def memo(self, key: tuple[str, ...], loader: Callable[[], T]) -> T:
        """Another fact read from watched tables (a Hub view id), kept under the epoch;
        ``None`` results are kept too."""
        return self._memo.load(key, lambda: (loader(),))[0]  # type: ignore[return-value]

    def facts(self, session: Session, namespace: str, name: str) -> ModelFacts:
        return self._models.load((namespace, name), lambda: _load_model(session, namespace, name))

    def files(self, session: Session, release_id: int) -> dict[str, ReleaseFile]:
        """A published release's files by path, in path order."""

        def load() -> dict[str, ReleaseFile]:
            rows = repo.files(session, release_id)
            _detach(session, rows)
            return {f.path: f for f in rows}

        return self._files.load(release_id, load)

    def clearance(
        self, session: Session, principal: Principal, model_id: int, *, now: datetime
    ) -> Tier:
        """:func:`app.auth.holdings.clearance_for`, the grants and agreements kept."""
        held = Holdings()
        pid = principal.id
        if pid is not None and not principal.is_admin and principal.kind != "anonymous":

            def load() -> Holdings:
                return holdings(
                    session,
                    user_ids=[pid] if principal.kind == "user" else [],
                    partner_ids=[pid] if principal.kind == "partner" else [],
                    model_ids=[model_id],
                )

            held = self._holdings.load((principal.kind, pid, model_id), load)
        return held.clearance(principal, model_id, now)

    def visible_model_release(
        self,
        session: Session,
        principal: Principal,
        namespace: str,
        name: str,
        version: str,
        *,
        now: datetime,
    ) -> tuple[Model, Tier, Release, list[ComponentView]]:
        """:func:`app.catalogue.visibility.visible_model_release`, from the cache for
        everyone but staff: the same answers and the same 404s."""
        if principal.is_admin:
            return visible_model_release(session, principal, namespace, name, version, now=now)
        facts = self.facts(session, namespace, name)
        model = facts.model
        clearance = self.clearance(
            session, principal, NO_MODEL if model is None else model.id, now=now
        )
        if clearance != Tier.OPEN:
            if model is None:
                raise model_not_found(namespace, name)
            if version == "main":
                found = _named(facts.announced(now), version)
            else:
                found = _named(facts.published, version)
            if found is None:
                raise release_not_found(model, version)
            views = facts.views(found, clearance=clearance, now=now)
            if all(v.tier == Tier.INTERNAL for v in views):
                raise release_not_found(model, version)
            return model, clearance, found, views
        announced = facts.announced(now)
        if model is None or not announced:
            raise model_not_found(namespace, name)
        found = _named(announced, version)
        if found is None:
            raise release_not_found(model, version)
        return model, clearance, found, facts.views(found, clearance=clearance, now=now)


def _detach(session: Session, rows: Sequence[object]) -> None:
    """Take rows out of the loading session: shared between requests and threads, they
    must never expire with its commit nor be written through it."""
    for row in rows:
        session.expunge(row)


def _load_model(session: Session, namespace: str, name: str) -> ModelFacts:
    model = repo.model_by_id(session, namespace, name)
    mid = NO_MODEL if model is None else model.id
    published = list(published_releases(session, [mid]))
    comps = list(repo.published_components(session, mid))
    stages = repo.published_stages(session, mid, [c.id for c in comps])
    _detach(session, [*([model] if model else []), *published, *comps])
    _detach(session, [s for ss in stages.values() for s in ss])
    return ModelFacts(model, published, comps, stages)


async def _catalogue_cache(request: Request) -> CatalogueCache:
    # async: FastAPI runs a sync dependency in the thread pool, a hop that costs more than
    # reading an attribute.
    return parts_of(request.app).catalogue_cache


CatalogueCacheDep = Annotated[CatalogueCache, Depends(_catalogue_cache)]
