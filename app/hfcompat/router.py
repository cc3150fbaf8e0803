"""Hugging Face Hub routes, so ``huggingface_hub`` and ``hf download`` work unchanged.

What ``huggingface_hub`` 2.4 does (``_snapshot_download.py``, ``file_download.py``):
``GET /api/models/{id}/revision/{rev}`` for the commit (skipped when ``rev`` is already a
40-hex commit), ``GET /api/models/{id}/tree/{commit}?recursive=true`` following
``Link: rel="next"``, then per file ``HEAD /{id}/resolve/{commit}/{path}`` — reading
``X-Repo-Commit``, ``X-Linked-Etag``, ``X-Linked-Size`` — and a ``GET`` of whatever URL the
HEAD ended on. The HEAD follows a redirect only on the same origin; a redirect elsewhere (a
presigned S3 URL) is not followed, and its headers are taken from the 302 itself. Hence:
in redirect mode both HEAD and GET answer 302 carrying every header, and in proxy mode (or
with a store that cannot presign) both answer with the file (HEAD without the body).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import get_principal
from app.catalogue.cached import CatalogueCache, CatalogueCacheDep
from app.context import ClockDep, RequestContext, get_context
from app.db import SessionDep
from app.delivery.service import (
    Authorized,
    Checked,
    FileAddress,
    delivery_mode,
    download_charge,
)
from app.delivery.streaming import RangePlan, etag_for, file_headers, file_response
from app.errors import AppError, Unauthorized, problems
from app.hfcompat import errors, git_routes, resolution, schemas, service, unsupported, whoami
from app.hfcompat.caller import HfPrincipalDep
from app.hfcompat.service import HfRelease
from app.models import ReleaseFile
from app.pagination import decode_cursor, encode_cursor
from app.parts import Parts, parts_of
from app.policy.principals import Principal
from app.quotas import service as quotas

router = APIRouter(tags=["huggingface"])
API = "/api/models/{namespace}/{name}"
TREE_PAGE = 1000  # the Hub's own page size for recursive listings


def _info(session: Session, target: HfRelease, response: Response) -> schemas.ModelInfo:
    warning = service.closed_warning(target)
    if warning:
        response.headers["X-HF-Warning"] = warning  # huggingface_hub logs it
    return service.model_info(session, target)


@router.get(API, responses=problems(401, 404))
def model_info(
    namespace: str,
    name: str,
    response: Response,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
    cache: CatalogueCacheDep,
) -> schemas.ModelInfo:
    """The latest published release, as the Hub's ``model_info``."""
    target = service.open_release(
        session, principal, namespace, name, service.MAIN, now=clock.now(), cache=cache
    )
    return _info(session, target, response)


@router.get(API + "/revision/{rev:path}", responses=problems(401, 404))
def model_info_at(
    namespace: str,
    name: str,
    rev: str,
    response: Response,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
    cache: CatalogueCacheDep,
) -> schemas.ModelInfo:
    """``rev`` is a version, a revision id or ``main``. ``siblings`` lists only the files the
    caller may download now; ``gated`` is set while some component is closed to the caller,
    and ``X-HF-Warning`` says why and until when."""
    target = service.open_release(
        session, principal, namespace, name, rev, now=clock.now(), cache=cache
    )
    return _info(session, target, response)


def _tree(
    request: Request,
    response: Response,
    session: Session,
    principal: Principal,
    clock: ClockDep,
    cache: CatalogueCache,
    *,
    namespace: str,
    name: str,
    rev: str,
    path: str,
    recursive: bool,
    limit: int,
    cursor: str | None,
) -> list[schemas.TreeEntry]:
    target = service.open_release(
        session, principal, namespace, name, rev, now=clock.now(), cache=cache
    )
    listing = service.tree(session, target, path=path, recursive=recursive)
    start = decode_cursor(cursor) if cursor else 0
    page = listing.entries[start : start + limit]
    if start + limit < len(listing.entries):
        # Absolute, as the client requests it verbatim; built from the URL the client used.
        nxt = request.url.include_query_params(cursor=encode_cursor(start + limit))
        response.headers["Link"] = f'<{nxt}>; rel="next"'
    if listing.warning:
        response.headers["X-HF-Warning"] = listing.warning  # huggingface_hub logs it
    return page


Recursive = Annotated[bool, Query(description="list everything beneath the path")]
Expand = Annotated[bool, Query(description="accepted for compatibility; no extra fields")]
Limit = Annotated[int, Query(ge=1, le=TREE_PAGE)]
Cursor = Annotated[str | None, Query(max_length=64)]


@router.get(API + "/tree/{rev}", responses=problems(401, 403, 404, 422))
def tree_root(
    namespace: str,
    name: str,
    rev: str,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
    cache: CatalogueCacheDep,
    recursive: Recursive = False,
    expand: Expand = False,
    limit: Limit = TREE_PAGE,
    cursor: Cursor = None,
) -> list[schemas.TreeEntry]:
    """Files and directories of the release the caller may download now, paginated with
    ``Link: <…>; rel="next"``. A release with nothing open to the caller is a 403 GatedRepo."""
    return _tree(
        request,
        response,
        session,
        principal,
        clock,
        cache,
        namespace=namespace,
        name=name,
        rev=rev,
        path="",
        recursive=recursive,
        limit=limit,
        cursor=cursor,
    )


@router.get(API + "/tree/{rev}/{path:path}", responses=problems(401, 403, 404, 422))
def tree_path(
    namespace: str,
    name: str,
    rev: str,
    path: str,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
    cache: CatalogueCacheDep,
    recursive: Recursive = False,
    expand: Expand = False,
    limit: Limit = TREE_PAGE,
    cursor: Cursor = None,
) -> list[schemas.TreeEntry]:
    """The same listing, below the directory ``path``."""
    return _tree(
        request,
        response,
        session,
        principal,
        clock,
        cache,
        namespace=namespace,
        name=name,
        rev=rev,
        path=path,
        recursive=recursive,
        limit=limit,
        cursor=cursor,
    )


def _hub_headers(target: HfRelease, row: ReleaseFile) -> dict[str, str]:
    return {
        "X-Repo-Commit": target.revision,
        "X-Linked-Etag": etag_for(row.sha256),
        "X-Linked-Size": str(row.size),
    }


RESOLVE_PATH = "/{namespace}/{name}/resolve/{rev}/{path:path}"
RESOLVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file (proxy mode)"},
    206: {"description": "part of the file (Range)"},
    302: {"description": "redirect to a presigned URL (redirect mode)"},
    304: {"description": "not modified (If-None-Match)"},
    **problems(401, 403, 404, 416),
}


# The route reads the caller itself (no dependencies, app/hfcompat/router.py: resolve), so
# FastAPI cannot see that it takes the bearer scheme: say so.
RESOLVE_SECURITY: dict[str, Any] = {"security": [{"bearer": []}]}


# Two decorators rather than one api_route(methods=[GET, HEAD]): FastAPI gives a multi-method
# route one operation id, which makes the OpenAPI document invalid (duplicate ids).
@router.get(
    RESOLVE_PATH,
    response_class=Response,
    responses=RESOLVE_RESPONSES,
    operation_id="hf_resolve_get",
    openapi_extra=RESOLVE_SECURITY,
)
@router.head(
    RESOLVE_PATH,
    response_class=Response,
    responses=RESOLVE_RESPONSES,
    operation_id="hf_resolve_head",
    openapi_extra=RESOLVE_SECURITY,
)
async def resolve(namespace: str, name: str, rev: str, path: str, request: Request) -> Response:
    """A file of a release, with the Hub's ``X-Repo-Commit``/``X-Linked-*`` headers."""
    # One trip to the thread pool for all the reads (the key, the access rule, the file), then
    # the batch on the event loop: as dependencies, the session, the key and the route would
    # each take their own trip, and the thread hand-offs cost more CPU than the route's work.
    parts = parts_of(request.app)
    ctx = get_context(request)
    item, response = await run_in_threadpool(
        _decide, request, parts, namespace, name, rev, path, ctx, parts.clock.now()
    )
    # Charged and recorded in the next download batch (app.delivery.group_commit), as
    # /v1/files is: one transaction, one chain lock and one commit for every download arriving
    # together. Before, each resolve held the chain's lock through a commit of its own, which
    # queued concurrent resolves (a client's HEAD and GET of every file) one at a time. Raises
    # the refusal (a quota, or the one decided below) once it is on record.
    await parts.redeemer.submit(item)
    assert response is not None  # a refused item raised above
    return response


def _decide(
    request: Request,
    parts: Parts,
    namespace: str,
    name: str,
    rev: str,
    path: str,
    ctx: RequestContext,
    now: datetime,
) -> tuple[Checked, Response | None]:
    """The caller, the release ``rev`` names and the file (:mod:`app.hfcompat.resolution`,
    committed before the batch runs): what to record, and the answer to send if the batch
    accepts it."""

    def authenticate(session: Session) -> Principal:
        try:
            return get_principal(request, session, parts.clock)
        except Unauthorized as e:
            raise errors.with_invalid_credentials(e) from e

    decided = resolution.decide(parts, authenticate, namespace, name, rev, path, now=now)
    principal, target = decided.principal, decided.target
    record = _Record(
        address=FileAddress(
            target.model.namespace, target.model.name, target.release.version, path
        ),
        method=request.method,
        now=now,
        ctx=ctx,
        actor=principal.subject,
        data={"path": path, "tier": target.clearance.value, "method": request.method},
    )
    if isinstance(decided.found, AppError):
        return record.checked(decided.found), None
    try:
        ans = _answer(request, parts, target, decided.found, now=now)
    except AppError as err:
        return record.checked(err), None
    settings = parts.settings
    charge = None
    if ans.sends:
        subject = None if principal.kind == "anonymous" else principal.subject
        charge = download_charge(
            settings, subject, client_addr=ctx.client_addr, size=ans.bytes, now=now
        )
    more = {**ans.data, "bytes": ans.bytes}
    return record.checked(ans.allowed, charge, more), ans.response


@dataclass(frozen=True)
class _Record:
    """What the audit event of one resolve says, whatever its outcome."""

    address: FileAddress
    method: str
    now: datetime
    ctx: RequestContext
    actor: str
    data: dict[str, object]

    def checked(
        self,
        result: Authorized | AppError,
        charge: quotas.Charge | None = None,
        more: dict[str, object] | None = None,
    ) -> Checked:
        return Checked(
            result=result,
            charge=charge,
            address=self.address,
            method=self.method,
            now=self.now,
            ctx=self.ctx,
            actor=self.actor,
            action="hf.resolve",
            data={**self.data, **(more or {})},
        )


@dataclass(frozen=True)
class _Answer:
    response: Response
    sends: bool  # the answer hands out the bytes (directly, or by a presigned URL)
    bytes: int
    data: dict[str, object]  # for the audit event
    allowed: Authorized


def _metadata_only(target: HfRelease, row: ReleaseFile, hub: dict[str, str]) -> _Answer:
    """A HEAD in redirect mode: the file's metadata and no URL. A presigned URL is a GET
    credential for the whole object, and a HEAD is charged nothing; handing one out here let
    anyone fetch files past their quota (even after a 429). The Hub's client reads the
    metadata from this answer and then GETs the same URL, which redirects and is charged."""
    headers = {
        **hub,
        **file_headers(sha256=row.sha256, size=row.size, filename=row.path),
        "Content-Length": str(row.size),
    }
    response = Response(status_code=200, headers=headers, media_type="application/octet-stream")
    return _Answer(
        response,
        False,
        0,
        {"method": "HEAD", "mode": "redirect", "status": 200},
        Authorized(row.sha256, row.size, RangePlan(200, 0, row.size - 1), None),
    )


def _answer(
    request: Request, parts: Parts, target: HfRelease, row: ReleaseFile, *, now: datetime
) -> _Answer:
    """The 302 (redirect mode) or the file itself, and what to audit about it."""
    settings, store = parts.settings, parts.store
    hub = _hub_headers(target, row)
    method = request.method
    redirecting = delivery_mode(settings, store) == "redirect"
    if redirecting and method == "HEAD":
        return _metadata_only(target, row, hub)
    url = None
    if redirecting:
        url = parts.presign_cache.url(
            store,
            sha256=row.sha256,
            filename=row.path,
            now=now,
            cap_seconds=settings.presign_max_seconds,
            not_after=None,
        )
    if url is not None:
        redirect = Response(
            status_code=302,
            headers={
                **hub,
                "Location": url,
                "ETag": etag_for(row.sha256),
                # The Location is a bearer credential until it expires: never cache it.
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )
        return _Answer(
            redirect,
            True,
            row.size,  # the URL can fetch the whole object, whatever range was asked
            {"method": method, "mode": "redirect", "status": 302},
            Authorized(row.sha256, row.size, RangePlan(200, 0, row.size - 1), None),
        )
    response, plan = file_response(
        method,
        request.headers,
        store,
        sha256=row.sha256,
        size=row.size,
        filename=row.path,
        extra_headers=hub,
    )
    sends = method == "GET" and plan.status in (200, 206)
    data: dict[str, object] = {"method": method, "mode": "proxy", "status": plan.status}
    if plan.status == 206:
        data["range"] = [plan.start, plan.end]
    allowed = Authorized(row.sha256, row.size, plan, None)
    return _Answer(response, sends, plan.length if sends else 0, data, allowed)


# After the routes above, and the catch-all last: it answers what nothing else matched.
router.include_router(whoami.router)
router.include_router(git_routes.router)
router.include_router(unsupported.router)
