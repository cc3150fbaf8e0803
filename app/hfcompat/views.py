"""Revision ids for Hugging Face clients: one per set of files a caller may see.

``huggingface_hub`` caches a commit's file list (``trees/<commit>.json``, also under
``--local-dir``) and reuses it forever, whatever the token, even with ``--force-download``:
a commit is immutable on the Hub. Here the files a caller may download change with grants,
lifts, restrictions and agreements while the release stays the same, so if the release's
revision were the only commit, a snapshot taken before an approval would be reused after
it, "complete", without the weights.

So the Hub routes hand out the **view** the caller has now: the release's revision when
every component is open to them, otherwise ``sha1("weightgate-view" ∥ revision ∥ the
names of the components they may download)``. Another set of visible files is another
commit, which the client has never listed. The id is derived, so every replica hands out
the same one; a ``hub_views`` row, written the first time it is handed out, makes it
resolve later (every id handed out keeps resolving). What a commit id names is fixed: the
release's revision is the whole release, a view id its components; :mod:`service` decides
what each caller may take of it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.catalogue.cached import CatalogueCache
from app.models import Component, HubView, Model, Release

_HEX40 = re.compile(r"[0-9a-f]{40}")


def is_commit_id(rev: str) -> bool:
    return _HEX40.fullmatch(rev) is not None


def view_revision(release_revision: str, names: Iterable[str], *, whole: bool) -> str:
    """The commit id of ``release_revision`` seen with the components ``names``; the
    release's own revision when they are all of them (``whole``)."""
    if whole:
        return release_revision
    listed = "\n".join(sorted(names))
    material = f"weightgate-view\x00{release_revision}\x00{listed}".encode()
    # SHA-1 because a git commit id is one; nothing relies on it for security.
    return hashlib.sha1(material, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class NamedView:
    version: str
    component_ids: frozenset[int]


def find(
    session: Session,
    namespace: str,
    name: str,
    revision: str,
    *,
    cache: CatalogueCache | None = None,
) -> NamedView | None:
    """The release version and components a view id handed out for this model names (kept
    in ``cache``: a new view on any replica moves the epoch, like any catalogue change)."""
    if cache is not None:
        return cache.memo(
            ("view", namespace, name, revision), lambda: find(session, namespace, name, revision)
        )
    row = session.execute(
        select(Release.version, HubView.component_ids)
        .join(Release, Release.id == HubView.release_id)
        .join(Model, Model.id == Release.model_id)
        .where(HubView.revision == revision, Model.namespace == namespace, Model.name == name)
    ).one_or_none()
    if row is None:
        return None
    return NamedView(row[0], frozenset(int(i) for i in row[1]))


def record(
    session: Session,
    release: Release,
    components: Iterable[Component],
    revision: str,
    *,
    now: datetime,
    cache: CatalogueCache | None = None,
) -> None:
    """Make the view id ``revision`` resolvable from now on (once; replicas may race).
    Known to ``cache`` once recorded: every later caller with the same view is answered
    without a statement."""

    def stored() -> bool:
        return session.scalar(select(HubView.id).where(HubView.revision == revision)) is not None

    # Only a committed row is remembered (read in an earlier transaction or another
    # replica's): this transaction's insert may still roll back.
    if cache is not None and cache.memo(("recorded", revision), stored):
        return
    if cache is None and stored():
        return
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        ins(HubView)
        .values(
            revision=revision,
            release_id=release.id,
            component_ids=sorted(c.id for c in components),
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["revision"])
    )
