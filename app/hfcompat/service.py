"""The Hub's view of a release: which revision ``rev`` names, what the caller may list and
fetch, and why the rest is closed.

The access rule is the catalogue's (:mod:`app.catalogue.visibility`), applied at request
time: a file is listed (``siblings``, ``tree``) and served (``resolve``) only while its
component is open to the caller. Files of components the caller may not know about
(``internal`` to non-staff) do not exist as far as these routes are concerned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from app.catalogue import repository as repo
from app.catalogue.cached import CatalogueCache
from app.catalogue.visibility import ComponentView, visible_model_release
from app.errors import AppError, NotFound
from app.hfcompat import errors, schemas, views
from app.hfcompat.schemas import TreeDirectory
from app.hfcompat.tree import (
    FileFacts,
    directory_oid,
    file_entry,
    list_tree,
    normalise_dir,
    under,
)
from app.models import Model, Release, ReleaseFile
from app.policy.decision import Reason, Refused, decide
from app.policy.disclosure import file_disclosure
from app.policy.principals import Principal
from app.policy.tiers import Tier
from app.refusals import stamp

MAIN = "main"


@dataclass(frozen=True)
class HfRelease:
    """A published release as one caller sees it now, through the commit id ``rev`` named
    (app/hfcompat/views.py): ``pinned`` holds the components of a commit id the caller
    asked for (the release's revision: all of them; a view id: its own); ``None`` when
    ``rev`` was ``main`` or a version, which name the caller's view now."""

    model: Model
    release: Release
    caller: Principal
    clearance: Tier
    views: dict[int, ComponentView]  # by component id
    now: datetime
    revision: str  # the commit id the answer is about, as the client sees it
    pinned: frozenset[int] | None
    cache: CatalogueCache | None = None

    def files(self, session: Session) -> Sequence[ReleaseFile]:
        """The release's files, in path order (from the cache when there is one)."""
        if self.cache is None:
            return repo.files(session, self.release.id)
        return list(self.cache.files(session, self.release.id).values())

    def file(self, session: Session, path: str) -> ReleaseFile | None:
        if self.cache is None:
            return repo.file_by_path(session, self.release.id, path)
        return self.cache.files(session, self.release.id).get(path)

    def _in_commit(self, component_id: int) -> bool:
        return self.pinned is None or component_id in self.pinned

    def downloadable(self, f: ReleaseFile) -> bool:
        return self._in_commit(f.component_id) and self.views[f.component_id].downloadable

    def closed(self) -> list[ComponentView]:
        """Components of the release the caller may know about but not download now,
        soonest opening first: what a listing leaves out, or a refusal names, whichever
        commit was asked for."""
        return sorted(
            (v for v in self.views.values() if v.visible and not v.downloadable),
            key=lambda v: (
                v.opens_to_caller_at is None,
                v.opens_to_caller_at.timestamp() if v.opens_to_caller_at else 0.0,
                v.component.name,
            ),
        )

    def whole(self) -> bool:
        """Whether the caller may download every file of the commit now (a view of now
        always is: it is made of what they may download)."""
        return self.pinned is None or all(self.views[c].downloadable for c in self.pinned)

    def gated_value(self) -> bool:
        return bool(self.closed())


def open_release(
    session: Session,
    principal: Principal,
    namespace: str,
    name: str,
    rev: str,
    *,
    now: datetime,
    cache: CatalogueCache | None = None,
) -> HfRelease:
    """The published release ``rev`` names (a version, ``main``, the release's revision id,
    or a view id handed out before), as the caller sees it now; read through ``cache``
    (app/catalogue/cached.py) when given."""
    repo_id = f"{namespace}/{name}"
    named, pinned = rev, None
    view = None
    if views.is_commit_id(rev):
        view = views.find(session, namespace, name, rev, cache=cache)
    if view is not None:
        named, pinned = view.version, view.component_ids
    try:
        if cache is None:
            found = visible_model_release(session, principal, namespace, name, named, now=now)
        else:
            found = cache.visible_model_release(session, principal, namespace, name, named, now=now)
        model, clearance, rel, seen = found
    except NotFound as e:
        if e.code == "model_not_found":
            raise errors.repo_not_found(repo_id) from e
        raise errors.revision_not_found(repo_id, rev) from e
    # Drafts have no revision id yet, and the Hub client cannot work without one.
    if rel.status != "published" or rel.revision is None:
        raise errors.revision_not_found(repo_id, rev)
    by_id = {v.component.id: v for v in seen}
    if view is None and rev == rel.revision:
        pinned = frozenset(by_id)
    if pinned is not None:
        return HfRelease(model, rel, principal, clearance, by_id, now, rev, pinned, cache)
    return current_view(session, principal, model, rel, clearance, seen, now=now, cache=cache)


def current_view(
    session: Session,
    principal: Principal,
    model: Model,
    rel: Release,
    clearance: Tier,
    seen: Sequence[ComponentView],
    *,
    now: datetime,
    cache: CatalogueCache | None = None,
) -> HfRelease:
    """``rel`` as the caller sees it now, under the commit id of that view (recorded the
    first time it is handed out, app/hfcompat/views.py)."""
    assert rel.revision is not None  # published
    open_now = [v.component for v in seen if v.downloadable]
    whole = not open_now or len(open_now) == len(seen)
    commit = views.view_revision(rel.revision, (c.name for c in open_now), whole=whole)
    if commit != rel.revision:
        views.record(session, rel, open_now, commit, now=now, cache=cache)
    by_id = {v.component.id: v for v in seen}
    return HfRelease(model, rel, principal, clearance, by_id, now, commit, None, cache)


def closed_reasons(target: HfRelease) -> list[errors.ClosedReason]:
    """Each component the caller may know about but not download now, soonest opening
    first, with the policy's reason (app/policy/decision.py) and date: what the Hub routes
    may say about closed content (app/policy/disclosure.py). It depends on the release
    alone, never on the path asked for."""
    repo_id = target.model.repo_id
    out = []
    for v in target.closed():
        decision = decide(
            target.caller, clearance=target.clearance, schedule=v.state, now=target.now
        )
        assert isinstance(decision, Refused)  # closed() holds what the caller may not take
        name, until = v.component.name, decision.until
        if decision.reason == Reason.GRANT_REQUIRED:
            text = f"{name} needs an approved access request (weightgate request-access {repo_id})"
            if until:
                text += f"; it opens to everyone at {stamp(until)}"
        elif decision.reason == Reason.EMBARGOED and until is not None:
            text = f"{name} is under embargo until {stamp(until)}"
        elif decision.reason == Reason.HELD:
            # The hold's reason stays with admins (app/refusals.py: denial).
            text = (
                f"{name} is on hold: the stage that opens it to you waits for an "
                "administrator to resume its schedule"
            )
        else:
            text = (
                f"{name} is not open to your access tier ({target.clearance.value}): "
                "nothing scheduled opens it to you"
            )
        out.append(errors.ClosedReason(name, decision.reason, until, text))
    return out


def closed_error(target: HfRelease, what: str) -> AppError:
    """The refusal for something of ``target`` closed to the caller, naming every closed
    component with its reason and date (app/hfcompat/errors.py: gated)."""
    return errors.gated(target.model.repo_id, what, closed_reasons(target))


def facts(files: Sequence[ReleaseFile]) -> list[FileFacts]:
    return [FileFacts(f.path, f.size, f.sha256) for f in files]


def model_info(session: Session, target: HfRelease) -> schemas.ModelInfo:
    model, rel = target.model, target.release
    files = [f for f in target.files(session) if target.downloadable(f)]
    siblings = []
    for f in files:
        entry = file_entry(FileFacts(f.path, f.size, f.sha256))
        siblings.append(
            schemas.Sibling(
                rfilename=f.path,
                size=f.size,
                blobId=entry.oid,
                lfs=schemas.SiblingLfs(
                    size=f.size, sha256=f.sha256, pointerSize=entry.lfs.pointerSize
                ),
            )
        )
    gated: Literal["auto", "manual", False] = False
    if target.gated_value():
        gated = "auto" if model.auto_approve else "manual"
    return schemas.ModelInfo(
        id=model.repo_id,
        modelId=model.repo_id,
        author=model.namespace,
        sha=target.revision,
        gated=gated,
        createdAt=model.created_at,
        lastModified=rel.published_at,
        tags=["weightgate", f"version:{rel.version}"],
        usedStorage=sum(f.size for f in files),
        siblings=siblings,
        weightgate=schemas.WeightgateInfo(
            version=rel.version,
            release_revision=target.release.revision or "",
            clearance=target.clearance,
            components=[
                schemas.ComponentState(
                    name=v.component.name,
                    tier=v.tier,
                    downloadable=v.downloadable,
                    opens_to_you_at=v.opens_to_caller_at,
                )
                for v in sorted(target.views.values(), key=lambda v: v.component.name)
                if v.visible
            ],
        ),
    )


@dataclass(frozen=True)
class TreeListing:
    entries: list[schemas.TreeEntry]
    warning: str | None  # X-HF-Warning, set when some components are not open to the caller


def closed_warning(target: HfRelease) -> str | None:
    """The ``X-HF-Warning`` of an answer that lists only part of the release (model info, a
    tree), naming every closed component with its reason and date; ``None`` when nothing is
    closed to the caller. The client shows a topic's first warning only, once per process:
    one topic per repository and revision, so another model's (or another view's) gap is
    not silent. It is on the model info too: a second ``snapshot_download`` of the same view
    reads the file list from its cache and asks only for the model info."""
    reasons = closed_reasons(target)
    if not reasons:
        return None
    repo_id = target.model.repo_id
    message = (
        f"files of {repo_id}@{target.release.version} that are not open to you were left out: "
        + "; ".join(r.text for r in reasons)
    )
    return errors.hub_warning(f"weightgate-closed {repo_id}@{target.revision}", message)


def _unknown_path(target: HfRelease, path: str) -> AppError:
    """The answer for a path the caller may not download now, missing or not: decided by
    the release alone (app/policy/disclosure.py). A release with a component closed to the caller
    is gated as a whole, as huggingface.co gates a repository: GatedRepo, saying how it
    opens. Otherwise the path is not there."""
    if target.closed():
        return closed_error(target, f"release {target.release.version}")
    return errors.entry_not_found(
        target.model.repo_id, target.release.version, path, commit=target.revision
    )


def _disclosed(target: HfRelease, f: ReleaseFile) -> bool:
    """Whether ``f`` is in the commit and the caller may know it exists: only if they may
    download it now."""
    view = target.views[f.component_id]
    shown = file_disclosure(downloadable=view.downloadable, component_visible=view.visible)
    return shown == "download" and target.downloadable(f)


def _partial_commit(target: HfRelease) -> AppError:
    """A commit id named outright whose files are not all open to the caller now. Listing
    part of it would be cached by the client as the whole commit, for good; so it is
    refused, saying what is closed and where the open part is."""
    whole = target.pinned == frozenset(target.views)
    what = (
        f"revision {target.revision} (all of release {target.release.version})"
        if whole
        else f"revision {target.revision} (of release {target.release.version})"
    )
    hint = (
        f"; the files open to you now are at revision {target.release.version!r} "
        "(or main, for the latest release)"
    )
    return errors.gated(target.model.repo_id, what, closed_reasons(target), hint=hint)


def tree(session: Session, target: HfRelease, *, path: str, recursive: bool) -> TreeListing:
    """The files of the commit the caller may download now, as a tree: all of them, or a
    refusal (:func:`_partial_commit`). A directory holding none of them is answered like a
    missing one (its paths are not the caller's to know), whatever closed files it may
    hold."""
    if not target.whole():
        raise _partial_commit(target)
    directory = normalise_dir(path)
    files = [f for f in target.files(session) if _disclosed(target, f)]
    inside = under(facts(files), directory)
    if directory and not inside:
        raise _unknown_path(target, directory)
    if not files and target.closed():
        # Listing nothing would let `snapshot_download` "succeed" with an empty folder.
        raise closed_error(target, f"release {target.release.version}")
    entries = list_tree(inside, revision=target.revision, directory=directory, recursive=recursive)
    return TreeListing(entries, closed_warning(target))


def resolve_file(session: Session, target: HfRelease, path: str) -> ReleaseFile:
    """The file ``path`` if the caller may download it now; any other path (missing, or
    closed to the caller) is the same EntryNotFound."""
    row = target.file(session, path)
    if row is None or not _disclosed(target, row):
        raise _unknown_path(target, path)
    return row


def paths_info(
    session: Session, target: HfRelease, paths: Sequence[str]
) -> list[schemas.TreeEntry]:
    """Of ``paths``, the files the caller may download now and the directories holding some,
    in the order asked (each once). None of them, in a release with something closed to the
    caller: the release's GatedRepo, answered from the release alone (app/policy/disclosure.py)."""
    files = facts([f for f in target.files(session) if _disclosed(target, f)])
    by_path = {f.path: f for f in files}
    found: dict[str, schemas.TreeEntry] = {}
    for asked in paths:
        path = normalise_dir(asked)
        if not path or path in found:
            continue
        if path in by_path:
            found[path] = file_entry(by_path[path])
        elif under(files, path):
            found[path] = TreeDirectory(path=path, oid=directory_oid(target.revision, path))
    if paths and not found and target.closed():
        raise closed_error(target, f"release {target.release.version}")
    return list(found.values())
