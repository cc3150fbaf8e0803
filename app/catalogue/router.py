"""Catalogue routes: models, releases, components, file uploads, manifests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import AdminDep, PrincipalDep
from app.catalogue import listing, lookups, schemas, service, uploads
from app.catalogue.cached import CatalogueCacheDep

# admin_model: also the console's (app.console imports it from here).
from app.catalogue.lookups import admin_model as admin_model
from app.catalogue.lookups import component_outs, release_components
from app.catalogue.names import routed_file_path
from app.catalogue.service import require_release
from app.catalogue.visibility import (
    announced_release_ids,
    latest_visible_releases,
    visible_model,
    visible_release,
)
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import PayloadTooLarge, problems
from app.models import Model, Release
from app.pagination import Page, PageDep, encode_cursor
from app.parts import parts_of
from app.policy.tiers import Tier
from app.signing import service as signing
from app.signing.keys import ReleaseKeysDep

router = APIRouter(prefix="/v1/models", tags=["catalogue"])
MODEL = "/{namespace}/{name}"
RELEASE = MODEL + "/releases/{version}"


def model_out(
    m: Model, latest: Release | None = None, clearance: Tier | None = None
) -> schemas.ModelOut:
    return schemas.ModelOut(
        id=m.repo_id,
        display_name=m.display_name,
        description=m.description,
        license=m.license,
        license_sha256=m.license_sha256,
        auto_approve=m.auto_approve,
        request_fields=[schemas.RequestField(**f) for f in m.request_fields],
        created_at=m.created_at,
        updated_at=m.updated_at,
        latest_version=latest.version if latest else None,
        clearance=clearance,
    )


def release_out(m: Model, r: Release, stats: tuple[int, int] | None) -> schemas.ReleaseOut:
    n, total = stats or (0, 0)
    return schemas.ReleaseOut(
        model=m.repo_id,
        version=r.version,
        notes=r.notes,
        status=r.status,
        revision=r.revision,
        created_at=r.created_at,
        published_at=r.published_at,
        file_count=n,
        total_size=total,
    )


@router.post("", status_code=201, responses=problems(401, 403, 409, 422))
def create_model(
    body: schemas.ModelCreate,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> schemas.ModelOut:
    return model_out(
        service.create_model(session, body=body, actor=admin, now=clock.now(), ctx=ctx)
    )


@router.get("", responses=problems(401, 422))
def list_models(
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(max_length=200, description="only models whose id or display name contains it"),
    ] = None,
) -> Page[schemas.ModelOut]:
    """Models the caller may know about, oldest first."""
    items, after = listing.visible_models_page(
        session, principal, after=page.after, limit=page.limit, now=clock.now(), search=q
    )
    return Page(
        items=[model_out(x.model, x.latest, x.clearance) for x in items],
        next_cursor=encode_cursor(after) if after is not None else None,
    )


@router.get(MODEL, responses=problems(401, 404))
def get_model(
    namespace: str, name: str, session: SessionDep, principal: PrincipalDep, clock: ClockDep
) -> schemas.ModelOut:
    now = clock.now()
    model, clearance = visible_model(session, principal, namespace, name, now=now)
    latest = latest_visible_releases(session, principal, [model], now=now).get(model.id)
    return model_out(model, latest, clearance)


@router.patch(MODEL, responses=problems(401, 403, 404, 422))
def update_model(
    namespace: str,
    name: str,
    body: schemas.ModelPatch,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> schemas.ModelOut:
    model = admin_model(session, namespace, name)
    service.update_model(session, model=model, body=body, actor=admin, now=clock.now(), ctx=ctx)
    return model_out(model, lookups.latest_published(session, model))


@router.post(MODEL + "/releases", status_code=201, responses=problems(401, 403, 404, 409, 422))
def create_release(
    namespace: str,
    name: str,
    body: schemas.ReleaseCreate,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> schemas.ReleaseOut:
    model = admin_model(session, namespace, name)
    rel = service.create_release(
        session, model=model, body=body, actor=admin, now=clock.now(), ctx=ctx
    )
    return release_out(model, rel, None)


@router.get(MODEL + "/releases", responses=problems(401, 404, 422))
def list_releases(
    namespace: str,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
    page: PageDep,
) -> Page[schemas.ReleaseOut]:
    model, clearance = visible_model(session, principal, namespace, name, now=clock.now())
    rels = lookups.releases_page(
        session, model, after=page.after, limit=page.limit, published_only=not principal.is_admin
    )
    nxt = encode_cursor(rels[-1].id) if len(rels) == page.limit else None
    if not principal.is_admin:
        # A release whose components are all still internal answers like an unknown one.
        announced = announced_release_ids(session, rels, now=clock.now())
        rels = [r for r in rels if r.id in announced]
    stats = lookups.visible_stats(session, principal, clearance, rels, now=clock.now())
    return Page(items=[release_out(model, r, stats.get(r.id)) for r in rels], next_cursor=nxt)


@router.get(RELEASE, responses=problems(401, 404))
def get_release(
    namespace: str,
    name: str,
    version: str,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
) -> schemas.ReleaseOut:
    model, clearance = visible_model(session, principal, namespace, name, now=clock.now())
    rel = visible_release(session, principal, model, version, now=clock.now())
    stats = lookups.visible_stats(session, principal, clearance, [rel], now=clock.now())
    return release_out(model, rel, stats.get(rel.id))


@router.post(RELEASE + "/publish", responses=problems(401, 403, 404, 409, 503))
def publish_release(
    namespace: str,
    name: str,
    version: str,
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
    release_keys: ReleaseKeysDep,
) -> schemas.PublishOut:
    model = admin_model(session, namespace, name)
    rel = require_release(session, model, version)
    service.publish(
        session,
        model=model,
        rel=rel,
        store=parts_of(request.app).store,
        release_keys=release_keys,
        actor=admin,
        now=clock.now(),
        ctx=ctx,
    )
    assert rel.revision is not None
    assert rel.published_at is not None
    return schemas.PublishOut(
        version=rel.version, revision=rel.revision, published_at=rel.published_at
    )


@router.post(RELEASE + "/signatures/revoke", responses=problems(401, 403, 404, 409, 422))
def revoke_signatures(
    namespace: str,
    name: str,
    version: str,
    body: schemas.SignatureRevoke,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> schemas.SignatureRevokeOut:
    """Mark a published release's signatures revoked (its key was compromised, or it signed
    what it should not have): the files stay, the manifest, ``/.well-known/release-keys.json``
    and ``weightgate verify`` say so. Audited; announced as ``release.signature_revoked``."""
    model = admin_model(session, namespace, name)
    rel = require_release(session, model, version)
    rows = signing.revoke(
        session, model=model, rel=rel, reason=body.reason, actor=admin, now=clock.now(), ctx=ctx
    )
    return schemas.SignatureRevokeOut(
        model=model.repo_id,
        version=rel.version,
        revision=rel.revision,
        revoked_at=clock.now(),
        reason=body.reason,
        key_ids=sorted({r.key_id for r in rows}),
    )


@router.post(RELEASE + "/components", status_code=201, responses=problems(401, 403, 404, 409, 422))
def create_component(
    namespace: str,
    name: str,
    version: str,
    body: schemas.ComponentCreate,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> schemas.ComponentOut:
    model = admin_model(session, namespace, name)
    rel = require_release(session, model, version)
    comp = service.create_component(
        session, model=model, rel=rel, body=body, actor=admin, now=clock.now(), ctx=ctx
    )
    return component_outs(session, rel, [comp], now=clock.now())[0]


@router.get(RELEASE + "/components", responses=problems(401, 403, 404))
def list_components(
    namespace: str, name: str, version: str, session: SessionDep, admin: AdminDep, clock: ClockDep
) -> list[schemas.ComponentOut]:
    model = admin_model(session, namespace, name)
    rel = require_release(session, model, version)
    return component_outs(session, rel, release_components(session, rel), now=clock.now())


@router.put(
    RELEASE + "/files/{path:path}",
    status_code=201,
    responses={
        200: {"description": "an existing file was replaced"},
        **problems(400, 401, 403, 404, 409, 413, 422, 503),
    },
)
async def upload_file(
    namespace: str,
    name: str,
    version: str,
    path: str,
    request: Request,
    response: Response,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
    settings: SettingsDep,
    component: Annotated[str | None, Query(max_length=64)] = None,
    x_content_sha256: Annotated[str | None, Header()] = None,
) -> schemas.FileOut:
    """Upload one file (streamed; SHA-256 computed server side). ``X-Content-SHA256``, when
    sent, must match or nothing is stored."""
    path = routed_file_path(request.scope["path"], path)
    expected = uploads.check_declared_hash(x_content_sha256)
    # Read from the request, not declared as a parameter: a client never sets it by hand.
    declared = request.headers.get("content-length", "")
    content_length = int(declared) if declared.isdigit() and len(declared) <= 18 else None
    if content_length is not None and content_length > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"file exceeds the upload limit of {settings.max_upload_bytes} bytes",
            code="file_too_large",
        )
    model = await run_in_threadpool(admin_model, session, namespace, name)
    row, component_name, replaced = await uploads.receive(
        session,
        store=parts_of(request.app).store,
        body=request.stream(),
        model=model,
        version=version,
        path=path,
        component=component,
        expected_sha256=expected,
        settings=settings,
        actor=admin,
        clock=clock,
        ctx=ctx,
    )
    if replaced:
        response.status_code = 200
    return schemas.FileOut(
        path=row.path, size=row.size, sha256=row.sha256, component=component_name
    )


@router.delete(
    RELEASE + "/files/{path:path}", status_code=204, responses=problems(401, 403, 404, 409, 422)
)
def delete_file(
    namespace: str,
    name: str,
    version: str,
    path: str,
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """Remove a file from a draft release (its stored object stays: others may share it)."""
    path = routed_file_path(request.scope["path"], path)
    model = admin_model(session, namespace, name)
    uploads.delete_file(
        session,
        model=model,
        version=version,
        path=path,
        actor=admin,
        now=clock.now(),
        ctx=ctx,
    )
    return Response(status_code=204)


@router.get(RELEASE + "/manifest", responses=problems(401, 404))
def get_manifest(
    namespace: str,
    name: str,
    version: str,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
    cache: CatalogueCacheDep,
) -> schemas.Manifest:
    """Files the caller may download now, and every component the caller may know about
    with its tier and next lift. ``version`` may also be a revision id or ``main``."""
    return service.manifest(
        session,
        principal=principal,
        namespace=namespace,
        name=name,
        version=version,
        now=clock.now(),
        cache=cache,
    )
