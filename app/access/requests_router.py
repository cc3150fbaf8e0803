"""HTTP routes for access requests (users ask, admins decide) and the grants they create."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from app.access import grants as grants_service
from app.access import requests as requests_service
from app.access.schemas import (
    AccessRequestCreate,
    AccessRequestOut,
    ApproveIn,
    BulkDecision,
    BulkResult,
    DenyIn,
    GrantOut,
    MyGrantOut,
)
from app.auth.dependencies import AdminDep, UserDep
from app.catalogue.lookups import model_named
from app.catalogue.names import split_model_id
from app.catalogue.visibility import visible_model
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import NotFound, problems
from app.ids import IdPath, IdQuery
from app.instants import Instant
from app.models import AccessRequest
from app.pagination import Page, PageDep, encode_cursor

router = APIRouter()
MODEL = "/v1/models/{namespace}/{name}"
Status = Literal["pending", "approved", "denied"]


def _page(
    session: Session, rows: list[tuple[AccessRequest, str]], limit: int
) -> Page[AccessRequestOut]:
    nxt = encode_cursor(rows[-1][0].id) if len(rows) == limit else None
    return Page(items=requests_service.request_views(session, rows), next_cursor=nxt)


@router.post(
    MODEL + "/access-requests", status_code=201, responses=problems(401, 403, 404, 409, 422)
)
def request_access(
    namespace: str,
    name: str,
    body: AccessRequestCreate,
    principal: UserDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AccessRequestOut:
    """Ask for access to a model: answer its request fields and accept its license (the
    SHA-256 of the license text is recorded). Auto-approve models answer ``approved``."""
    now = clock.now()
    model, clearance = visible_model(session, principal, namespace, name, now=now)
    req = requests_service.create_request(
        session, principal=principal, model=model, clearance=clearance, body=body, now=now, ctx=ctx
    )
    return requests_service.request_view(session, req)


@router.get("/v1/me/access-requests", responses=problems(401, 403, 422))
def my_access_requests(
    principal: UserDep,
    session: SessionDep,
    page: PageDep,
    status: Status | None = None,
) -> Page[AccessRequestOut]:
    """The caller's own requests, oldest first."""
    rows = requests_service.requests_page(
        session, after=page.after, limit=page.limit, status=status, user_id=principal.user_id
    )
    return _page(session, rows, page.limit)


@router.get("/v1/me/grants", responses=problems(401, 403, 422))
def my_grants(
    principal: UserDep, session: SessionDep, clock: ClockDep, page: PageDep
) -> Page[MyGrantOut]:
    """The caller's grants, revoked ones included (with the reason), oldest first, each with
    what it opens: the latest release's components as the caller sees them now, each
    downloadable or opening at a date."""
    assert principal.user_id is not None
    rows = grants_service.user_grants_page(
        session, principal.user_id, after=page.after, limit=page.limit
    )
    now = clock.now()
    items = [grants_service.my_grant_out(session, principal, g, m, now=now) for g, m in rows]
    nxt = encode_cursor(rows[-1][0].id) if len(rows) == page.limit else None
    return Page(items=items, next_cursor=nxt)


@router.get("/v1/access-requests", responses=problems(401, 403, 404, 422))
def list_access_requests(
    admin: AdminDep,
    session: SessionDep,
    page: PageDep,
    status: Status | None = None,
    model: Annotated[str | None, Query(max_length=193, examples=["acme/atlas-7b"])] = None,
    user: IdQuery | None = None,
    created_before: Annotated[
        Instant | None, Query(description="only requests made before this time (their age)")
    ] = None,
    answer: Annotated[
        str | None,
        Query(max_length=200, description="text the answers contain (case-insensitive)"),
    ] = None,
    email_domain: Annotated[
        str | None,
        Query(
            max_length=253,
            pattern=r"^[A-Za-z0-9.-]+$",
            description="the requester's email domain",
            examples=["example.org"],
        ),
    ] = None,
) -> Page[AccessRequestOut]:
    """All requests, oldest first (``?status=pending`` is the approval queue), filtered by
    model, user, age, answer text and email domain."""
    model_id = None
    if model is not None:
        model_id = model_named(session, *split_model_id(model)).id
    rows = requests_service.requests_page(
        session,
        after=page.after,
        limit=page.limit,
        status=status,
        model_id=model_id,
        user_id=user,
        created_before=created_before,
        answer=answer,
        email_domain=email_domain,
    )
    return _page(session, rows, page.limit)


@router.post("/v1/access-requests/bulk", responses=problems(401, 403, 422))
def bulk_decide(
    body: BulkDecision, admin: AdminDep, session: SessionDep, clock: ClockDep, ctx: ContextDep
) -> BulkResult:
    """Approve or deny many pending requests in one call. Ids that are unknown or already
    decided are listed under ``skipped``; the rest are decided together."""
    return requests_service.decide_many(
        session,
        ids=body.ids,
        approve=body.action == "approve",
        reason=body.reason,
        actor=admin,
        now=clock.now(),
        ctx=ctx,
    )


@router.get("/v1/access-requests/{request_id}", responses=problems(401, 403, 404))
def get_access_request(
    request_id: IdPath, principal: UserDep, session: SessionDep
) -> AccessRequestOut:
    """One request: admins see any, a user only their own (others are "not found")."""
    req = requests_service.access_request(session, request_id)
    if req is None or (not principal.is_admin and req.user_id != principal.user_id):
        raise NotFound(f"no access request {request_id}", code="access_request_not_found")
    return requests_service.request_view(session, req)


@router.post(
    "/v1/access-requests/{request_id}/approve", responses=problems(401, 403, 404, 409, 422)
)
def approve(
    request_id: IdPath,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    body: ApproveIn | None = None,
) -> AccessRequestOut:
    req = requests_service.decide_one(
        session,
        request_id=request_id,
        approve=True,
        reason=body.reason if body else None,
        actor=admin,
        now=clock.now(),
        ctx=ctx,
    )
    return requests_service.request_view(session, req)


@router.post("/v1/access-requests/{request_id}/deny", responses=problems(401, 403, 404, 409, 422))
def deny(
    request_id: IdPath,
    body: DenyIn,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AccessRequestOut:
    req = requests_service.decide_one(
        session,
        request_id=request_id,
        approve=False,
        reason=body.reason,
        actor=admin,
        now=clock.now(),
        ctx=ctx,
    )
    return requests_service.request_view(session, req)


# --- grants (admin) -----------------------------------------------------------------------


@router.get(MODEL + "/grants", responses=problems(401, 403, 404, 422))
def list_grants(
    namespace: str,
    name: str,
    admin: AdminDep,
    session: SessionDep,
    page: PageDep,
    include_revoked: bool = False,
) -> Page[GrantOut]:
    """Who holds research access to the model (``?include_revoked=true`` for history)."""
    model = model_named(session, namespace, name)
    rows = grants_service.grants_page(
        session, model, after=page.after, limit=page.limit, include_revoked=include_revoked
    )
    nxt = encode_cursor(rows[-1][0].id) if len(rows) == page.limit else None
    return Page(
        items=[grants_service.grant_out(g, model=model.repo_id, email=e) for g, e in rows],
        next_cursor=nxt,
    )


@router.get(MODEL + "/grants/{user}", responses=problems(401, 403, 404))
def get_grant(
    namespace: str, name: str, user: str, admin: AdminDep, session: SessionDep
) -> GrantOut:
    """A user's grant (by user id or email): the active one, else the latest revoked."""
    model = model_named(session, namespace, name)
    target = grants_service.resolve_user(session, user)
    grant = grants_service.grant_of(session, model=model, user=target)
    return grants_service.grant_out(grant, model=model.repo_id, email=target.email)


@router.delete(MODEL + "/grants/{user}", status_code=204, responses=problems(401, 403, 404, 422))
def revoke_grant(
    namespace: str,
    name: str,
    user: str,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    reason: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Revoke a user's grant now; their download tokens for the model are revoked with it."""
    model = model_named(session, namespace, name)
    target = grants_service.resolve_user(session, user)
    grants_service.revoke_grant(
        session, model=model, user=target, reason=reason, actor=admin, now=clock.now(), ctx=ctx
    )
    return Response(status_code=204)
