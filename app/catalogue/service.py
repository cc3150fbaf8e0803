"""Catalogue rules: creating models, releases and components, publishing, the manifest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.catalogue import repository as repo
from app.catalogue import schemas
from app.catalogue.cached import CatalogueCache
from app.catalogue.names import check_component, check_version, split_model_id
from app.catalogue.visibility import ComponentView, visible_model_release
from app.context import RequestContext
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Component, Model, Release, ReleaseFile, Stage
from app.policy.decision import Refused, decide
from app.policy.principals import Principal
from app.policy.schedule import opens_to
from app.policy.stages import InvalidSchedule, check_stages
from app.policy.tiers import Tier, may_download
from app.signing.bundle import reserved_prefix
from app.signing.keys import ReleaseKeySet
from app.signing.repository import signatures_with_paths
from app.signing.service import sign_release
from app.storage import ObjectStore

# audit_events.target_id is 256 characters; a model id, version and 1 KiB path are not.
AUDIT_TARGET_MAX = 256


def audit_target(model: Model, version: str | None = None, item: str | None = None) -> str:
    """``ns/name[@version[/item]]``, shortened with a digest when it would not fit.

    Events also carry the full path in their payload, so nothing is lost by shortening.
    """
    text = model.repo_id
    if version is not None:
        text += f"@{version}"
    if item is not None:
        text += f"/{item}"
    if len(text) <= AUDIT_TARGET_MAX:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{text[: AUDIT_TARGET_MAX - 18]}~{digest}"


def license_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_snapshot(model: Model) -> dict[str, Any]:
    return {
        "display_name": model.display_name,
        "license_sha256": model.license_sha256,
        "auto_approve": model.auto_approve,
        "request_fields": model.request_fields,
    }


def create_model(
    session: Session,
    *,
    body: schemas.ModelCreate,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> Model:
    namespace, name = split_model_id(body.id)
    if repo.model_by_id(session, namespace, name) is not None:
        raise Conflict(f"model {body.id} already exists", code="model_exists")
    model = Model(
        namespace=namespace,
        name=name,
        display_name=body.display_name or name,
        description=body.description,
        license=body.license,
        license_sha256=license_hash(body.license),
        auto_approve=body.auto_approve,
        request_fields=[f.model_dump() for f in body.request_fields],
        created_at=now,
        updated_at=now,
    )
    session.add(model)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:  # lost a race with a concurrent create
        raise Conflict(f"model {body.id} already exists", code="model_exists") from e
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="model.created",
        target_type="model",
        target_id=model.repo_id,
        after=model_snapshot(model),
        ctx=ctx,
    )
    return model


def update_model(
    session: Session,
    *,
    model: Model,
    body: schemas.ModelPatch,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> Model:
    before = model_snapshot(model)
    fields = body.model_dump(exclude_unset=True)
    if "request_fields" in fields and fields["request_fields"] is not None:
        model.request_fields = [f.model_dump() for f in body.request_fields or []]
    for key in ("display_name", "description", "auto_approve"):
        if fields.get(key) is not None:
            setattr(model, key, fields[key])
    if fields.get("license") is not None:
        model.license = fields["license"]
        model.license_sha256 = license_hash(model.license)
    model.updated_at = now
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="model.updated",
        target_type="model",
        target_id=model.repo_id,
        before=before,
        after=model_snapshot(model),
        ctx=ctx,
    )
    return model


def create_release(
    session: Session,
    *,
    model: Model,
    body: schemas.ReleaseCreate,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> Release:
    check_version(body.version)
    if repo.release(session, model.id, body.version) is not None:
        raise Conflict(
            f"release {body.version} of {model.repo_id} already exists", code="release_exists"
        )
    rel = Release(
        model_id=model.id, version=body.version, notes=body.notes, status="draft", created_at=now
    )
    session.add(rel)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:
        raise Conflict(
            f"release {body.version} of {model.repo_id} already exists", code="release_exists"
        ) from e
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="release.created",
        target_type="release",
        target_id=audit_target(model, rel.version),
        ctx=ctx,
    )
    return rel


def require_release(session: Session, model: Model, version: str) -> Release:
    """A release by version, for admin routes (422 for a version that could never exist)."""
    check_version(version)
    rel = repo.release(session, model.id, version)
    if rel is None:
        raise NotFound(f"release {version} of {model.repo_id} not found", code="release_not_found")
    return rel


def require_draft(model: Model, rel: Release) -> None:
    if rel.status != "draft":
        raise Conflict(
            f"release {rel.version} of {model.repo_id} is published; its files and components "
            "are frozen (publish a new version instead)",
            code="release_published",
        )


def create_component(
    session: Session,
    *,
    model: Model,
    rel: Release,
    body: schemas.ComponentCreate,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> Component:
    require_draft(model, rel)
    check_component(body.name)
    stages = [s.resolve(now) for s in body.schedule]
    check_schedule(stages)
    if repo.component(session, rel.id, body.name) is not None:
        raise Conflict(
            f"component {body.name} already exists in {rel.version}", code="component_exists"
        )
    comp = Component(release_id=rel.id, name=body.name, created_at=now)
    session.add(comp)
    session.flush()
    for tier, at in stages:
        session.add(Stage(component_id=comp.id, tier=tier.value, at=at, created_at=now))
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="component.created",
        target_type="component",
        target_id=audit_target(model, rel.version, comp.name),
        after={"schedule": [{"tier": t.value, "at": a.isoformat()} for t, a in stages]},
        ctx=ctx,
    )
    return comp


def canonical_manifest(
    model: Model, rel: Release, files: list[ReleaseFile], components: dict[int, str]
) -> bytes:
    doc = {
        "model": model.repo_id,
        "version": rel.version,
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "sha256": f.sha256,
                "component": components[f.component_id],
            }
            for f in sorted(files, key=lambda f: f.path)
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def publish(
    session: Session,
    *,
    model: Model,
    rel: Release,
    store: ObjectStore,
    release_keys: ReleaseKeySet,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> Release:
    """Freeze the release's files, name it by its revision, and sign each component
    (app/signing): the signature files join their components, outside the revision."""
    require_draft(model, rel)
    files = list(repo.files(session, rel.id))
    if not files:
        raise Conflict(f"release {rel.version} has no files to publish", code="release_empty")
    # Uploads there are refused, but a draft filled before release signing existed may hold
    # some: signing would collide with them or leave them unverified.
    reserved = sorted(f.path for f in files if reserved_prefix(f.path) is not None)
    if reserved:
        shown = ", ".join(reserved[:5]) + (
            f" and {len(reserved) - 5} more" if len(reserved) > 5 else ""
        )
        raise Conflict(
            f"release {rel.version} holds files under paths reserved for signatures and "
            f"client metadata ({shown}); delete them from the draft, then publish",
            code="reserved_path",
        )
    components = list(repo.components(session, rel.id))
    names = {c.id: c.name for c in components}
    # SHA-1 because Hugging Face clients take the revision for a git commit hash.
    manifest_bytes = canonical_manifest(model, rel, files, names)
    rel.revision = hashlib.sha1(manifest_bytes, usedforsecurity=False).hexdigest()
    rel.status = "published"
    rel.published_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:
        raise Conflict(
            "another release of this model has exactly the same manifest", code="duplicate_revision"
        ) from e
    signed = sign_release(
        session,
        store=store,
        keys=release_keys,
        model=model,
        rel=rel,
        files=files,
        components=components,
        now=now,
    )
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="release.published",
        target_type="release",
        target_id=audit_target(model, rel.version),
        after={
            "revision": rel.revision,
            "files": len(files),
            "signatures": {s.path: s.key_id for s in signed},
        },
        ctx=ctx,
    )
    return rel


def grant_outlook(view: ComponentView, *, now: datetime) -> schemas.GrantOutlook:
    """What an approved access request (clearance ``research``) would make of a component:
    what ``weightgate ls`` tells a researcher deciding whether to ask."""
    if may_download(Tier.RESEARCH, view.tier):
        return schemas.GrantOutlook(downloadable=True, opens_at=None)
    return schemas.GrantOutlook(
        downloadable=False, opens_at=opens_to(view.state, now, Tier.RESEARCH)
    )


def caller_state(
    view: ComponentView, outlook: schemas.GrantOutlook | None
) -> schemas.ComponentState:
    """The component's state for the caller in one word (see ``ComponentState``); ``outlook``
    is what a grant would make of it, for callers without one."""
    if view.downloadable:
        return "downloadable"
    if outlook is not None and (
        outlook.downloadable
        or (
            outlook.opens_at is not None
            and (view.opens_to_caller_at is None or outlook.opens_at < view.opens_to_caller_at)
        )
    ):
        return "needs_grant"
    if view.opens_to_caller_at is not None:
        return "opens"
    if view.state.held_at is not None or view.state.restricted_tier is not None:
        return "held"
    return "closed"


def manifest_component(
    view: ComponentView, *, caller: Principal, clearance: Tier, now: datetime
) -> schemas.ManifestComponent:
    outlook = grant_outlook(view, now=now) if clearance == Tier.OPEN else None
    decision = decide(caller, clearance=clearance, schedule=view.state, now=now)
    return schemas.ManifestComponent(
        name=view.component.name,
        tier=view.tier,
        next=schemas.StageOut(tier=view.next_tier, at=view.next_at)
        if view.next_tier and view.next_at
        else None,
        downloadable=view.downloadable,
        opens_to_you_at=view.opens_to_caller_at,
        held=view.state.held_at is not None,
        state=caller_state(view, outlook),
        with_grant=outlook,
        code=decision.reason.value if isinstance(decision, Refused) else None,
    )


def manifest(
    session: Session,
    *,
    principal: Principal,
    namespace: str,
    name: str,
    version: str,
    now: datetime,
    cache: CatalogueCache | None = None,
) -> schemas.Manifest:
    """The manifest; the release and the caller's clearance read through ``cache``
    (app/catalogue/cached.py) when given."""
    if cache is None:
        found = visible_model_release(session, principal, namespace, name, version, now=now)
        rows: Sequence[ReleaseFile] = repo.files(session, found[2].id)
    else:
        found = cache.visible_model_release(session, principal, namespace, name, version, now=now)
        rows = list(cache.files(session, found[2].id).values())
    model, clearance, rel, views = found
    by_id = {v.component.id: v for v in views}
    files = [
        schemas.ManifestFile(
            path=f.path,
            size=f.size,
            sha256=f.sha256,
            component=by_id[f.component_id].component.name,
            tier=by_id[f.component_id].tier,
        )
        for f in rows
        if by_id[f.component_id].downloadable
    ]
    comps = [
        manifest_component(v, caller=principal, clearance=clearance, now=now)
        for v in views
        if v.visible
    ]
    sigs = [
        schemas.ManifestSignature(
            component=by_id[sig.component_id].component.name,
            path=path,
            key_id=sig.key_id,
            signed_at=sig.signed_at,
            revoked_at=sig.revoked_at,
            revoke_reason=sig.revoke_reason,
        )
        for sig, path in signatures_with_paths(session, rel.id)
        if by_id[sig.component_id].downloadable
    ]
    return schemas.Manifest(
        model=model.repo_id,
        version=rel.version,
        revision=rel.revision,
        status=rel.status,
        clearance=clearance,
        files=files,
        components=comps,
        signature_status=signature_status(sigs),
        signatures=sigs,
    )


def signature_status(
    sigs: list[schemas.ManifestSignature],
) -> Literal["signed", "revoked", "unsigned"]:
    if any(s.revoked_at is not None for s in sigs):
        return "revoked"
    return "signed" if sigs else "unsigned"


def check_schedule(
    stages: Sequence[tuple[Tier, datetime]],
    *,
    after: Tier = Tier.INTERNAL,
    not_before: datetime | None = None,
) -> None:
    """:func:`app.policy.stages.check_stages`, a broken rule answered as a 422."""
    try:
        check_stages(stages, after=after, not_before=not_before)
    except InvalidSchedule as err:
        raise Unprocessable(str(err), code=err.code) from err
