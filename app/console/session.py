"""Who is using the console: the session cookie, checked against its database row on every
request, and the dependencies pages declare (signed in; admin; unsafe request checked)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response

from app.access.browser_sessions import SessionPolicy, SignedIn, signed_in
from app.console.security import CSRF_FIELD, CSRF_HEADER, check_csrf, check_origin
from app.context import ClockDep, SettingsDep
from app.db import SessionDep
from app.errors import NotFound, Unauthorized
from app.policy.principals import Principal
from app.settings import Settings

# The path every console cookie is scoped to: the API never sees them.
COOKIE_PATH = "/console"


class SignInRequired(Unauthorized):
    """No live session: a page answers with a redirect to the sign-in form."""

    default_code = "sign_in_required"


def page_not_found() -> NotFound:
    """What an unknown console page, and an admin page seen by a non-admin, answer: the
    same 404, so a researcher learns nothing from probing admin URLs."""
    return NotFound("no such route", code="route_not_found")


def is_https(settings: Settings) -> bool:
    return settings.effective_public_url.startswith("https://")


def session_cookie(settings: Settings) -> str:
    # The __Host- prefix makes the browser refuse the cookie unless it is Secure, host-only
    # and Path=/ — it cannot be planted by a sibling subdomain. It needs https, and Path=/.
    return "__Host-wg_session" if is_https(settings) else "wg_session"


def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy(
        idle=timedelta(seconds=settings.console_session_idle_seconds),
        lifetime=timedelta(seconds=settings.console_session_max_seconds),
    )


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    https = is_https(settings)
    response.set_cookie(
        session_cookie(settings),
        value,
        max_age=settings.console_session_max_seconds,
        path="/" if https else COOKIE_PATH,
        secure=https,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    https = is_https(settings)
    response.delete_cookie(
        session_cookie(settings),
        path="/" if https else COOKIE_PATH,
        secure=https,
        httponly=True,
        samesite="lax",
    )


def current_session(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> SignedIn | None:
    cached = getattr(request.state, "console_session", None)
    if isinstance(cached, SignedIn):
        return cached
    token = request.cookies.get(session_cookie(settings))
    if not token:
        return None
    found = signed_in(session, token, policy=session_policy(settings), now=clock.now())
    request.state.console_session = found
    return found


OptionalSession = Annotated[SignedIn | None, Depends(current_session)]


def require_session(found: OptionalSession) -> SignedIn:
    if found is None:
        raise SignInRequired("sign in to use the console")
    return found


Signed = Annotated[SignedIn, Depends(require_session)]


def require_admin_session(found: Signed) -> SignedIn:
    if found.user.role != "admin":
        raise page_not_found()
    return found


AdminSession = Annotated[SignedIn, Depends(require_admin_session)]


def principal_of(found: SignedIn) -> Principal:
    """The principal the services see: the same one the user's API key would give."""
    user = found.user
    return Principal(kind="user", id=user.id, role=user.role, name=user.email)


async def checked_form(request: Request, found: Signed, settings: SettingsDep) -> dict[str, str]:
    """An unsafe request's form, after the Origin and CSRF checks (403 otherwise; nothing
    is read from the form before both passed). Repeated fields keep their last value; use
    :func:`form_list` for multi-valued ones."""
    check_origin(request, settings.effective_public_url)
    form = await request.form()
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    check_csrf(found.csrf_token, sent if isinstance(sent, str) else None)
    return {k: v for k, v in form.items() if isinstance(v, str)}


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


async def form_list(request: Request, name: str) -> list[str]:
    form = await request.form()
    return [v for v in form.getlist(name) if isinstance(v, str)]
