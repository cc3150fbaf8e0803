"""Signing in and out of the console with an API key.

The key is exchanged for a server-side session (a database row; the browser keeps only a
random cookie value), so the key itself never sits in the browser. The sign-in form has a
CSRF token of its own, kept in a short-lived cookie (there is no session yet): a forged
cross-site sign-in cannot log a victim into the attacker's account.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from app.access.apikeys import authenticate_api_key
from app.access.browser_sessions import end_session, start_session
from app.console.security import CSRF_FIELD, PREFIX, check_origin
from app.console.session import (
    COOKIE_PATH,
    CheckedForm,
    OptionalSession,
    Signed,
    clear_session_cookie,
    is_https,
    session_policy,
    set_session_cookie,
)
from app.console.templating import render
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import Forbidden
from app.settings import Settings

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SIGN_IN_COOKIE = "wg_signin"
_SIGN_IN_TOKEN_SECONDS = 3600


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path of this server, nothing else (an open
    redirect would let a phishing link bounce through our sign-in)."""
    if (
        value
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
        and all(" " < c <= "~" for c in value)
    ):
        return value
    return PREFIX + "/"


def sign_in_page(
    request: Request, settings: Settings, *, next_path: str, error: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        {
            "sign_in_token": token,
            "next": next_path,
            "error": error,
            "oidc_enabled": settings.oidc_enabled,
            "open_registration": settings.open_registration,
        },
        status=status,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=_SIGN_IN_TOKEN_SECONDS,
        path=COOKIE_PATH,
        secure=is_https(settings),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/sign-in")
def sign_in_form(
    request: Request, found: OptionalSession, settings: SettingsDep, next: str | None = None
) -> Response:
    if found is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return sign_in_page(request, settings, next_path=safe_next(next))


async def _sign_in_fields(request: Request, settings: SettingsDep) -> dict[str, str]:
    """The sign-in form's fields, once its Origin passed (read here, in the event loop: the
    route itself runs in the thread pool, as database work should)."""
    check_origin(request, settings.effective_public_url)
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/sign-in")
def sign_in(
    request: Request,
    form: Annotated[dict[str, str], Depends(_sign_in_fields)],
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> Response:
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise Forbidden(
            "the sign-in form expired or was sent from elsewhere: reload it and try again",
            code="csrf_failed",
        )
    next_path = safe_next(form.get("next"))
    now = clock.now()
    user = authenticate_api_key(session, form.get("api_key", "").strip(), now=now)
    if user is None:
        return sign_in_page(
            request,
            settings,
            next_path=next_path,
            error="That API key is unknown, revoked or expired, or its user is disabled.",
            status=401,
        )
    _, token = start_session(
        session,
        user=user,
        method="api_key",
        policy=session_policy(settings),
        now=now,
        user_agent=request.headers.get("user-agent", ""),
        ctx=ctx,
    )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, settings, token)
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/sign-out")
def sign_out(
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> Response:
    end_session(session, found.session_id, now=clock.now(), ctx=ctx)
    response = RedirectResponse(PREFIX + "/sign-in", status_code=303)
    clear_session_cookie(response, settings)
    return response


@router.get("/")
def home(request: Request, found: Signed) -> Response:
    if found.user.role == "admin":
        return RedirectResponse(PREFIX + "/upcoming", status_code=303)
    return RedirectResponse(PREFIX + "/catalogue", status_code=303)


@router.get("")
def root() -> Response:
    return RedirectResponse(PREFIX + "/", status_code=308)
