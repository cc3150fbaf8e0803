"""Open registration from the browser, where the operator turned it on: the same
``register`` service as ``POST /v1/register`` (same quota per client address, same checks),
then a console session and the new API key, shown once.

Like the sign-in form, the sign-up form carries a CSRF token kept in a short-lived cookie
(there is no session yet), and its ``Origin`` is checked.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from app.access import users
from app.access.browser_sessions import start_session
from app.access.schemas import RegisterIn
from app.console.researcher_pages import validation_message
from app.console.security import CSRF_FIELD, PREFIX
from app.console.session import (
    COOKIE_PATH,
    OptionalSession,
    is_https,
    page_not_found,
    session_policy,
    set_session_cookie,
)
from app.console.sign_in import _sign_in_fields
from app.console.templating import render
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import AppError, Forbidden
from app.quotas import service as quotas
from app.settings import Settings

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SIGN_UP_COOKIE = "wg_signup"
_TOKEN_SECONDS = 3600


def _form_page(
    request: Request,
    settings: Settings,
    *,
    email: str = "",
    name: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_up.html",
        {"sign_up_token": token, "email": email, "name": name, "error": error},
        status=status,
    )
    response.set_cookie(
        SIGN_UP_COOKIE,
        token,
        max_age=_TOKEN_SECONDS,
        path=COOKIE_PATH,
        secure=is_https(settings),
        httponly=True,
        samesite="strict",
    )
    return response


def _require_open(settings: Settings) -> None:
    # Closed registration: the page does not exist (as any unknown page).
    if not settings.open_registration:
        raise page_not_found()


@router.get("/sign-up")
def sign_up_form(request: Request, found: OptionalSession, settings: SettingsDep) -> Response:
    _require_open(settings)
    return _form_page(request, settings)


@router.post("/sign-up")
def sign_up(
    request: Request,
    form: Annotated[dict[str, str], Depends(_sign_in_fields)],
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> Response:
    _require_open(settings)
    expected = request.cookies.get(SIGN_UP_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise Forbidden(
            "the sign-up form expired or was sent from elsewhere: reload it and try again",
            code="csrf_failed",
        )
    email, name = form.get("email", "").strip(), form.get("name", "").strip()
    now = clock.now()
    try:
        # The API's own request schema: the same bounds on the email and the name.
        body = RegisterIn(email=email, name=name)
    except ValidationError as e:
        error = validation_message(e)
        return _form_page(request, settings, email=email, name=name, error=error, status=422)
    try:
        user, key = users.register(
            session,
            email=body.email,
            name=body.name,
            open_registration=settings.open_registration,
            quota=quotas.registrations_quota(settings),
            now=now,
            ctx=ctx,
        )
    except AppError as e:
        # register() committed the attempt against the quota already; nothing else was
        # written.
        session.rollback()
        page = _form_page(
            request, settings, email=email, name=name, error=e.detail, status=e.status
        )
        page.headers.update(e.headers)  # Retry-After, when over the sign-up quota
        return page
    _, token = start_session(
        session,
        user=user,
        method="sign_up",
        policy=session_policy(settings),
        now=now,
        user_agent=request.headers.get("user-agent", ""),
        ctx=ctx,
    )
    response = render(
        request, "sign_up_done.html", {"key": key, "new_email": user.email}, as_signed_in=False
    )
    set_session_cookie(response, settings, token)
    response.delete_cookie(SIGN_UP_COOKIE, path=COOKIE_PATH)
    return response
