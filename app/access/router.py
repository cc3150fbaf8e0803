"""HTTP routes of the access domain: registration, the caller's identity and API keys, and
partner organisations. Access requests and grants are in :mod:`app.access.requests_router`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from app.access import apikeys, partners, users
from app.access.partner_router import router as partner_router
from app.access.requests_router import router as requests_router
from app.access.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LeakedKey,
    MeOut,
    PartnerCreate,
    PartnerOut,
    PartnerPatch,
    PartnerWithSecret,
    RegisterIn,
    RegisterOut,
    RevokedKey,
    Role,
    UserCreate,
    UserCreated,
    UserDetail,
    UserOut,
    UserPatch,
)
from app.auth.dependencies import AdminDep, AuthenticatedDep, UserDep
from app.clock import Clock
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import NotFound, Unauthorized, problems
from app.ids import IdPath
from app.models import ApiKey, Partner, User
from app.pagination import Page, PageDep, encode_cursor
from app.quotas import service as quotas

router = APIRouter(tags=["access"])
router.include_router(requests_router)
router.include_router(partner_router)


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id, email=user.email, name=user.name, role=user.role, created_at=user.created_at
    )


def key_out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


@router.post("/v1/register", status_code=201, responses=problems(403, 409, 422, 429))
def register(
    body: RegisterIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> RegisterOut:
    """Create a researcher account and its first API key (shown once). Only when the
    operator set ``WEIGHTGATE_OPEN_REGISTRATION=true``; at most
    ``WEIGHTGATE_QUOTA_REGISTRATIONS_PER_HOUR`` attempts per client address."""
    user, key = users.register(
        session,
        email=body.email,
        name=body.name,
        open_registration=settings.open_registration,
        quota=quotas.registrations_quota(settings),
        now=clock.now(),
        ctx=ctx,
    )
    return RegisterOut(user=user_out(user), api_key=key)


@router.get("/v1/me", responses=problems(401))
def me(principal: AuthenticatedDep, session: SessionDep, clock: ClockDep) -> MeOut:
    """Who the credential belongs to: a user (API key) or a partner (access token)."""
    assert principal.id is not None
    if principal.kind == "partner":
        partner = partners.partner_by_id(session, principal.id)
        if partner is None:
            raise Unauthorized("this partner no longer exists", code="invalid_credentials")
        return MeOut(
            kind="partner",
            id=partner.id,
            name=partner.name,
            client_id=partner.client_id,
            created_at=partner.created_at,
            models=partners.live_agreement_models(session, partner, now=clock.now()),
        )
    user = users.user_by_id(session, principal.id)
    assert user is not None  # the API key that authenticated the call belongs to it
    return MeOut(
        kind="user",
        id=user.id,
        name=user.name,
        email=user.email,
        role=user.role,
        created_at=user.created_at,
        partner_id=user.partner_id,
    )


@router.post("/v1/me/api-keys", status_code=201, responses=problems(401, 403, 409, 422))
def create_api_key(
    body: ApiKeyCreate, principal: UserDep, session: SessionDep, clock: ClockDep, ctx: ContextDep
) -> ApiKeyCreated:
    """A new API key for the caller; the key is in this response only."""
    assert principal.id is not None
    user = users.user_by_id(session, principal.id)
    assert user is not None
    now = clock.now()
    expires_at = body.expires_at
    if body.expires_in_days is not None:
        expires_at = now + timedelta(days=body.expires_in_days)
    row, key = apikeys.issue_key(
        session, user=user, name=body.name, expires_at=expires_at, now=now, ctx=ctx
    )
    return ApiKeyCreated(**key_out(row).model_dump(), key=key)


@router.get("/v1/me/api-keys", responses=problems(401, 403, 422))
def list_api_keys(principal: UserDep, session: SessionDep, page: PageDep) -> Page[ApiKeyOut]:
    """The caller's keys (prefix only; keys are never shown again), revoked ones included."""
    assert principal.id is not None
    rows = apikeys.api_keys_page(session, principal.id, after=page.after, limit=page.limit)
    nxt = encode_cursor(rows[-1].id) if len(rows) == page.limit else None
    return Page(items=[key_out(r) for r in rows], next_cursor=nxt)


@router.delete("/v1/me/api-keys/{key_id}", status_code=204, responses=problems(401, 403, 404))
def delete_api_key(
    key_id: IdPath, principal: UserDep, session: SessionDep, clock: ClockDep, ctx: ContextDep
) -> Response:
    """Revoke one of the caller's keys (it stops working at once)."""
    assert principal.id is not None
    apikeys.revoke_key(session, user_id=principal.id, key_id=key_id, now=clock.now(), ctx=ctx)
    return Response(status_code=204)


# --- users (admin) ------------------------------------------------------------------------


def user_detail(user: User) -> UserDetail:
    return UserDetail(
        **user_out(user).model_dump(), disabled_at=user.disabled_at, partner_id=user.partner_id
    )


@router.post("/v1/users", status_code=201, responses=problems(401, 403, 409, 422))
def create_user(
    body: UserCreate, admin: AdminDep, session: SessionDep, clock: ClockDep, ctx: ContextDep
) -> UserCreated:
    """A user and their first API key (in this response only), so onboarding needs no shell
    on the server (``weightgate admin create-user`` does the same there)."""
    user, key = users.create_user_with_key(
        session,
        email=body.email,
        role=body.role,
        name=body.name,
        actor=admin.subject,
        now=clock.now(),
        partner_id=body.partner_id,
        ctx=ctx,
    )
    return UserCreated(user=user_detail(user), api_key=key)


@router.get("/v1/users", responses=problems(401, 403, 422))
def list_users(
    admin: AdminDep,
    session: SessionDep,
    page: PageDep,
    email: Annotated[str | None, Query(max_length=320, description="exactly this email")] = None,
    role: Role | None = None,
    disabled: Annotated[bool | None, Query(description="only disabled, or only active")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="email or name contains this text (any case)"),
    ] = None,
) -> Page[UserDetail]:
    """Users in id order, optionally only those with one email (any case), role or state,
    or whose email or name contains ``q``."""
    rows = users.users_page(
        session,
        after=page.after,
        limit=page.limit,
        email=email,
        role=role,
        disabled=disabled,
        text=q,
    )
    nxt = encode_cursor(rows[-1].id) if len(rows) == page.limit else None
    return Page(items=[user_detail(u) for u in rows], next_cursor=nxt)


@router.get("/v1/users/{user_id}", responses=problems(401, 403, 404))
def get_user(user_id: IdPath, admin: AdminDep, session: SessionDep) -> UserDetail:
    return user_detail(_user_or_404(session, user_id))


@router.patch("/v1/users/{user_id}", responses=problems(401, 403, 404, 409, 422))
def update_user(
    user_id: IdPath,
    body: UserPatch,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> UserDetail:
    """Rename, change the role, or disable (offboarding: the user's API keys are refused and
    their download tokens revoked, at once) and re-enable. Refused with ``409 last_admin``
    if it would leave no active admin."""
    user = users.update_user(
        session, user_id=user_id, body=body, actor=admin.subject, now=clock.now(), ctx=ctx
    )
    return user_detail(user)


def _user_or_404(session: Session, user_id: int) -> User:
    user = users.user_by_id(session, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", code="user_not_found")
    return user


@router.get("/v1/users/{user_id}/api-keys", responses=problems(401, 403, 404, 422))
def list_user_api_keys(
    user_id: IdPath, admin: AdminDep, session: SessionDep, page: PageDep
) -> Page[ApiKeyOut]:
    """A user's keys (prefix only), revoked ones included."""
    _user_or_404(session, user_id)
    rows = apikeys.api_keys_page(session, user_id, after=page.after, limit=page.limit)
    nxt = encode_cursor(rows[-1].id) if len(rows) == page.limit else None
    return Page(items=[key_out(r) for r in rows], next_cursor=nxt)


@router.delete(
    "/v1/users/{user_id}/api-keys/{key_id}", status_code=204, responses=problems(401, 403, 404)
)
def revoke_user_api_key(
    user_id: IdPath,
    key_id: IdPath,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """Revoke one of a user's keys (it stops working at once; their other keys do not)."""
    apikeys.revoke_key(
        session, user_id=user_id, key_id=key_id, actor=admin.subject, now=clock.now(), ctx=ctx
    )
    return Response(status_code=204)


@router.post("/v1/api-keys/revoke", responses=problems(401, 403, 404, 422))
def revoke_leaked_api_key(
    body: LeakedKey, admin: AdminDep, session: SessionDep, clock: ClockDep, ctx: ContextDep
) -> RevokedKey:
    """Revoke a key by its clear value, whoever holds it: for a key found in a public
    repository or reported by a secret scanner (the ``wg_`` prefix is there for them).
    Idempotent; the answer names the key by id and prefix only."""
    row = apikeys.revoke_leaked(
        session, key=body.key, actor=admin.subject, now=clock.now(), ctx=ctx
    )
    return RevokedKey(**key_out(row).model_dump(), user_id=row.user_id)


# --- partners (admin) ---------------------------------------------------------------------


def _partner_out(session: Session, partner: Partner, clock: Clock) -> PartnerOut:
    return partners.partner_view(session, partner.id, now=clock.now())


@router.post("/v1/partners", status_code=201, responses=problems(401, 403, 409, 422))
def create_partner(
    body: PartnerCreate, admin: AdminDep, session: SessionDep, clock: ClockDep, ctx: ContextDep
) -> PartnerWithSecret:
    """A partner organisation with OAuth2 client credentials; ``client_secret`` is in this
    response only."""
    partner, secret = partners.create_partner(
        session, body=body, actor=admin, now=clock.now(), ctx=ctx
    )
    out = _partner_out(session, partner, clock)
    return PartnerWithSecret(**out.model_dump(), client_secret=secret)


@router.get("/v1/partners", responses=problems(401, 403, 422))
def list_partners(
    admin: AdminDep, session: SessionDep, clock: ClockDep, page: PageDep
) -> Page[PartnerOut]:
    items = partners.partners_page(session, after=page.after, limit=page.limit, now=clock.now())
    nxt = encode_cursor(items[-1].id) if len(items) == page.limit else None
    return Page(items=items, next_cursor=nxt)


@router.get("/v1/partners/{partner_id}", responses=problems(401, 403, 404))
def get_partner(
    partner_id: IdPath, admin: AdminDep, session: SessionDep, clock: ClockDep
) -> PartnerOut:
    return partners.partner_view(session, partner_id, now=clock.now())


@router.patch("/v1/partners/{partner_id}", responses=problems(401, 403, 404, 409, 422))
def update_partner(
    partner_id: IdPath,
    body: PartnerPatch,
    admin: AdminDep,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> PartnerWithSecret:
    """Rename, replace the covered models (with optional end dates), rotate the secret
    (``rotate_secret: true``; the new one is in this response only), disable or re-enable."""
    partner, secret = partners.update_partner(
        session, partner_id=partner_id, body=body, actor=admin, now=clock.now(), ctx=ctx
    )
    out = _partner_out(session, partner, clock)
    return PartnerWithSecret(**out.model_dump(), client_secret=secret)
