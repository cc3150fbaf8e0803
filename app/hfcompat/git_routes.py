"""The Hub's repository routes beyond listing and downloading: ``paths-info`` (what
``get_paths_info`` and ``HfFileSystem`` ask about given paths), ``refs`` and ``commits``
(``list_repo_refs``, ``list_repo_commits``: app/hfcompat/history.py), ``auth-check``
(``auth_check``)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request

from app.context import ClockDep
from app.db import SessionDep
from app.errors import BadRequest, PayloadTooLarge, problems
from app.hfcompat import history, schemas, service
from app.hfcompat.caller import HfPrincipalDep

router = APIRouter(tags=["huggingface"])
API = "/api/models/{namespace}/{name}"
MAX_PATHS = 1000  # the Hub's own page of paths-info answers
_MAX_BODY = 256 * 1024

PATHS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["paths"],
                    "properties": {
                        "paths": {
                            "type": "array",
                            "items": {"type": "string"},
                            "maxItems": MAX_PATHS,
                        },
                        "expand": {"type": "boolean"},
                    },
                }
            }
            for media in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


async def _asked_paths(request: Request) -> list[str]:
    """``paths`` from the form ``huggingface_hub`` sends (``paths=a&paths=b&expand=False``),
    or the same as JSON."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise PayloadTooLarge("paths-info body is too large")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype == "application/json":
            data = json.loads(body or b"{}")
            paths = data.get("paths") if isinstance(data, dict) else None
            if isinstance(paths, str):
                paths = [paths]
        else:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            paths = [v for k, v in pairs if k in ("paths", "paths[]")]
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadRequest("malformed paths-info body", code="malformed_body") from e
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequest("send paths: a list of paths", code="malformed_body")
    if len(paths) > MAX_PATHS:
        raise BadRequest(f"at most {MAX_PATHS} paths at once", code="too_many_paths")
    return [p for p in paths if len(p) <= 1024]


@router.post(
    API + "/paths-info/{rev}",
    responses=problems(400, 401, 403, 404, 413),
    openapi_extra=PATHS_BODY,
)
async def paths_info(
    namespace: str,
    name: str,
    rev: str,
    request: Request,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
) -> list[schemas.TreeEntry]:
    """The files and directories among ``paths`` that the caller may download now at
    ``rev``; other paths are left out, as the Hub leaves out missing ones. When none of them
    is, in a release with something closed to the caller, the answer is the release's
    GatedRepo (saying why and when it opens), as ``/resolve`` answers."""
    paths = await _asked_paths(request)
    target = service.open_release(session, principal, namespace, name, rev, now=clock.now())
    return service.paths_info(session, target, paths)


@router.get(API + "/refs", responses=problems(401, 404))
def list_refs(
    namespace: str,
    name: str,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
    include_prs: Annotated[bool, Query(description="accepted; there are no pull requests")] = False,
) -> schemas.GitRefs:
    """Each release the caller may know about as a tag, ``main`` as a branch at the latest,
    pointing at the commit of what the caller may download now."""
    targets = history.release_views(session, principal, namespace, name, now=clock.now())
    return history.refs(targets)


@router.get(API + "/commits/{rev}", responses=problems(401, 404))
def list_commits(
    namespace: str,
    name: str,
    rev: str,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
) -> list[schemas.GitCommit]:
    """The commit ``rev`` names, then the releases published before it: one commit per
    release (or the view of it a view id names), saying which it is."""
    now = clock.now()
    start = service.open_release(session, principal, namespace, name, rev, now=now)
    targets = history.release_views(session, principal, namespace, name, now=now)
    return history.history(targets, start)


@router.get(API + "/auth-check", responses=problems(401, 403, 404))
def auth_check(
    namespace: str,
    name: str,
    session: SessionDep,
    principal: HfPrincipalDep,
    clock: ClockDep,
) -> schemas.AuthCheck:
    """``HfApi.auth_check``: 200 when the caller may download every component of the latest
    release they may know about; otherwise the release's refusal, naming each closed
    component with its reason and date (``GatedRepoError`` in the client when an access
    request would open it, as the Hub answers for a gated repository). ``auth-check/write``
    is not served: weightgate is read-only to Hugging Face clients."""
    target = service.open_release(
        session, principal, namespace, name, service.MAIN, now=clock.now()
    )
    if target.closed():
        raise service.closed_error(target, f"release {target.release.version}")
    return schemas.AuthCheck(
        id=target.model.repo_id, sha=target.revision, version=target.release.version
    )
