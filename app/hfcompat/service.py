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
from app.catalogue.visibility import ComponentView, visible_model_release
from app.errors import AppError, NotFound
from app.hfcompat import errors, schemas
from app.hfcompat.tree import FileFacts, file_entry, list_tree, normalise_dir, under
from app.models import Model, Release, ReleaseFile
from app.policy.decision import Reason, Refused, decide
from app.policy.disclosure import file_disclosure
from app.policy.principals import Principal
from app.policy.tiers import Tier
from app.refusals import denial

MAIN = "main"


@dataclass(frozen=True)
class HfRelease:
    """A published release as one caller sees it now."""

    model: Model
    release: Release
    caller: Principal
    clearance: Tier
    views: dict[int, ComponentView]  # by component id
    now: datetime

    @property
    def revision(self) -> str:
        assert self.release.revision is not None  # published releases always have one
        return self.release.revision

    def downloadable(self, f: ReleaseFile) -> bool:
        return self.views[f.component_id].downloadable

    def closed(self) -> list[ComponentView]:
        """Components the caller may know about but not download now, soonest opening first."""
        return sorted(
            (v for v in self.views.values() if v.visible and not v.downloadable),
            key=lambda v: (
                v.opens_to_caller_at is None,
                v.opens_to_caller_at.timestamp() if v.opens_to_caller_at else 0.0,
                v.component.name,
            ),
        )

    def gated_value(self) -> bool:
        return bool(self.closed())


def open_release(
    session: Session, principal: Principal, namespace: str, name: str, rev: str, *, now: datetime
) -> HfRelease:
    """The published release ``rev`` names (a version, a revision id, or ``main``)."""
    repo_id = f"{namespace}/{name}"
    try:
        model, clearance, rel, views = visible_model_release(
            session, principal, namespace, name, rev, now=now
        )
    except NotFound as e:
        if e.code == "model_not_found":
            raise errors.repo_not_found(repo_id) from e
        raise errors.revision_not_found(repo_id, rev) from e
    # Drafts have no revision id yet, and the Hub client cannot work without one.
    if rel.status != "published" or rel.revision is None:
        raise errors.revision_not_found(repo_id, rev)
    return HfRelease(model, rel, principal, clearance, {v.component.id: v for v in views}, now)


def closed_error(target: HfRelease, what: str) -> AppError:
    """A GatedRepo error for the soonest-opening closed component, in the policy's words."""
    closed = target.closed()
    refused: Refused
    if closed:
        decision = decide(
            target.caller, clearance=target.clearance, schedule=closed[0].state, now=target.now
        )
        assert isinstance(decision, Refused)  # closed() holds what the caller may not take
        refused = decision
    else:
        refused = Refused(Reason.NOT_OPEN_TO_YOU, Tier.INTERNAL, target.clearance)
    repo_id = target.model.repo_id
    return denial(refused, f"{what} of {repo_id}", model=repo_id, hub=True)


def facts(files: Sequence[ReleaseFile]) -> list[FileFacts]:
    return [FileFacts(f.path, f.size, f.sha256) for f in files]


def model_info(session: Session, target: HfRelease) -> schemas.ModelInfo:
    model, rel = target.model, target.release
    files = [f for f in repo.files(session, rel.id) if target.downloadable(f)]
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
    warning: str | None  # set when some components are not open to the caller yet


def closed_note(target: HfRelease) -> str:
    """The release's components the caller may know about but not download now, and when
    they open: what the Hub routes may say about closed content (app/disclosure.py). It
    depends on the release alone, never on the path asked for."""
    closed = target.closed()
    if not closed:
        return ""
    parts = [
        f"{v.component.name} (opens to you at {v.opens_to_caller_at.isoformat()})"
        if v.opens_to_caller_at
        else f"{v.component.name} (not scheduled to open to you)"
        for v in closed
    ]
    return "; not open to you yet: " + ", ".join(parts)


def _unknown_path(target: HfRelease, path: str) -> AppError:
    """The answer for a path the caller may not download now, missing or not: decided by
    the release alone (app/disclosure.py). A release with a component closed to the caller
    is gated as a whole, as huggingface.co gates a repository: GatedRepo, saying how it
    opens. Otherwise the path is not there."""
    if target.closed():
        return closed_error(target, f"release {target.release.version}")
    return errors.entry_not_found(
        target.model.repo_id, target.release.version, path, commit=target.revision
    )


def _disclosed(target: HfRelease, f: ReleaseFile) -> bool:
    """Whether the caller may know ``f`` exists: only if they may download it now."""
    view = target.views[f.component_id]
    return file_disclosure(downloadable=view.downloadable, component_visible=view.visible) == (
        "download"
    )


def tree(session: Session, target: HfRelease, *, path: str, recursive: bool) -> TreeListing:
    """The files the caller may download now, as a tree. A directory holding none of them is
    answered like a missing one (its paths are not the caller's to know), whatever closed
    files it may hold."""
    directory = normalise_dir(path)
    files = [f for f in repo.files(session, target.release.id) if _disclosed(target, f)]
    inside = under(facts(files), directory)
    if directory and not inside:
        raise _unknown_path(target, directory)
    if not files and target.closed():
        # Listing nothing would let `snapshot_download` "succeed" with an empty folder.
        raise closed_error(target, f"release {target.release.version}")
    entries = list_tree(inside, revision=target.revision, directory=directory, recursive=recursive)
    note = closed_note(target)
    warning = (
        f"files of {target.model.repo_id}@{target.release.version} that are not open to you "
        f"were left out{note}"
        if note
        else None
    )
    return TreeListing(entries, warning)


def resolve_file(session: Session, target: HfRelease, path: str) -> ReleaseFile:
    """The file ``path`` if the caller may download it now; any other path (missing, or
    closed to the caller) is the same EntryNotFound."""
    row = repo.file_by_path(session, target.release.id, path)
    if row is None or not _disclosed(target, row):
        raise _unknown_path(target, path)
    return row
