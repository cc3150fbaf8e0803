"""The admin's user pages: find users by email or name, a user's role and state, their API
keys, and what was done to them (the audit events whose target they are). Changing the
role, disabling (their browser sessions end at once, their keys are refused and their
download tokens revoked) and re-enabling, and revoking a key go through the access service
exactly as ``PATCH /v1/users/{id}`` and ``DELETE /v1/users/{id}/api-keys/{key}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.access import apikeys, users
from app.access.router import key_out, user_detail
from app.access.schemas import UserPatch
from app.audit.trail import events_about
from app.console.schedule_actions import parse
from app.console.security import PREFIX
from app.console.session import AdminSession, CheckedForm, principal_of
from app.console.templating import render
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError
from app.ids import IdPath
from app.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
KEYS_PAGE = 20
TRAIL_PAGE = 20
Cursor = Annotated[str | None, Query(max_length=64)]
ROLES = ("researcher", "admin")
STATES = {"active": False, "disabled": True}
# What the page says after an action, by code (never free text taken from the URL).
DONE = {
    "role": "Role changed.",
    "disabled": "Disabled: their sessions ended, their keys are refused and their download "
    "tokens were revoked.",
    "enabled": "Enabled: their keys work again (ended sessions and revoked tokens stay so).",
    "key_revoked": "Key revoked: it stops working at once.",
}


@router.get("/users")
def users_list(
    request: Request,
    admin: AdminSession,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    role: Annotated[str, Query(pattern="^(|admin|researcher)$")] = "",
    state: Annotated[str, Query(pattern="^(|active|disabled)$")] = "",
    cursor: Cursor = None,
) -> Response:
    rows = users.users_page(
        session,
        after=decode_cursor(cursor) if cursor else None,
        limit=PAGE + 1,
        role=role or None,
        disabled=STATES.get(state),
        text=q.strip() or None,
    )
    shown = [user_detail(u) for u in rows[:PAGE]]
    filters = {"q": q, "role": role, "state": state}
    return render(
        request,
        "users.html",
        {
            "users": shown,
            "filters": filters,
            "roles": ROLES,
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > PAGE else None,
        },
    )


def render_user(
    request: Request,
    session: Session,
    user_id: int,
    *,
    keys_cursor: str | None = None,
    trail_cursor: str | None = None,
    notice: str | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    """The user page, its keys and its trail each one page (a fixed number of statements)."""
    user = user_detail(users.require_user(session, user_id))
    keys = apikeys.keys_page(
        session,
        user.id,
        after=decode_cursor(keys_cursor) if keys_cursor else None,
        limit=KEYS_PAGE + 1,
    )
    trail = events_about(
        session,
        "user",
        user.id,
        before_id=decode_cursor(trail_cursor) if trail_cursor else None,
        limit=TRAIL_PAGE + 1,
    )
    shown_keys = [key_out(k) for k in keys[:KEYS_PAGE]]
    shown_trail = trail[:TRAIL_PAGE]
    context: dict[str, Any] = {
        "u": user,
        "roles": ROLES,
        "keys": shown_keys,
        "keys_next": encode_cursor(shown_keys[-1].id) if len(keys) > KEYS_PAGE else None,
        "trail": shown_trail,
        "trail_next": encode_cursor(shown_trail[-1].id) if len(trail) > TRAIL_PAGE else None,
        "notice": notice,
        "error": error,
    }
    return render(request, "user.html", context, status=status)


@router.get("/users/{user_id}")
def user_page(
    request: Request,
    user_id: IdPath,
    admin: AdminSession,
    session: SessionDep,
    keys_cursor: Cursor = None,
    trail_cursor: Cursor = None,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    return render_user(
        request,
        session,
        user_id,
        keys_cursor=keys_cursor,
        trail_cursor=trail_cursor,
        notice=DONE.get(done or ""),
    )


def _update(
    request: Request,
    session: Session,
    user_id: int,
    data: dict[str, Any],
    *,
    admin: AdminSession,
    clock: ClockDep,
    ctx: ContextDep,
    done: str,
) -> Response:
    try:
        body: UserPatch = parse(UserPatch, data)
        users.update_user(
            session,
            user_id=user_id,
            body=body,
            actor=principal_of(admin).subject,
            now=clock.now(),
            ctx=ctx,
        )
    except AppError as e:
        session.rollback()
        return render_user(request, session, user_id, error=e.detail, status=e.status)
    return RedirectResponse(f"{PREFIX}/users/{user_id}?done={done}", status_code=303)


@router.post("/users/{user_id}/role")
def change_role(
    request: Request,
    user_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    return _update(
        request,
        session,
        user_id,
        {"role": form.get("role", "")},
        admin=admin,
        clock=clock,
        ctx=ctx,
        done="role",
    )


@router.post("/users/{user_id}/disable")
def disable(
    request: Request,
    user_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    return _update(
        request,
        session,
        user_id,
        {"disabled": True},
        admin=admin,
        clock=clock,
        ctx=ctx,
        done="disabled",
    )


@router.post("/users/{user_id}/enable")
def enable(
    request: Request,
    user_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    return _update(
        request,
        session,
        user_id,
        {"disabled": False},
        admin=admin,
        clock=clock,
        ctx=ctx,
        done="enabled",
    )


@router.post("/users/{user_id}/keys/{key_id}/revoke")
def revoke_key(
    request: Request,
    user_id: IdPath,
    key_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    users.require_user(session, user_id)
    try:
        apikeys.revoke_key(
            session,
            user_id=user_id,
            key_id=key_id,
            actor=principal_of(admin).subject,
            now=clock.now(),
            ctx=ctx,
        )
    except AppError as e:
        session.rollback()
        return render_user(request, session, user_id, error=e.detail, status=e.status)
    return RedirectResponse(f"{PREFIX}/users/{user_id}?done=key_revoked#keys", status_code=303)
