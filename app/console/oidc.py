"""Console sign-in through the lab's identity provider (OpenID Connect).

``/console/oidc/start`` sends the browser to the provider with a fresh state, nonce and
PKCE challenge (kept in a ten-minute, HttpOnly cookie); ``/console/oidc/callback`` checks
them, exchanges the code, verifies the ID token and signs in the user whose account has the
provider-verified email — if its domain is allowed. Refusals are audited
(``session.refused``) and shown on the sign-in form.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from app import audit
from app.access.browser_sessions import start_session
from app.access.users import user_for_identity
from app.console import oidc_client
from app.console.security import PREFIX
from app.console.session import (
    COOKIE_PATH,
    OptionalSession,
    is_https,
    page_not_found,
    session_policy,
    set_session_cookie,
)
from app.console.sign_in import safe_next, sign_in_page
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import AppError
from app.settings import Settings

router = APIRouter(prefix=PREFIX + "/oidc", include_in_schema=False)
_PENDING_SECONDS = 600


def _pending_cookie(settings: Settings) -> tuple[str, str]:
    """The cookie's name and path: ``__Host-`` behind https (no sibling host can plant
    one: that would be a sign-in CSRF into someone else's account)."""
    return ("__Host-wg_oidc", "/") if is_https(settings) else ("wg_oidc", COOKIE_PATH + "/oidc")


def _redirect_uri(settings: Settings) -> str:
    return settings.effective_public_url + PREFIX + "/oidc/callback"


def _enabled(settings: Settings) -> tuple[str, str]:
    if not settings.oidc_issuer or not settings.oidc_client_id:
        raise page_not_found()
    return settings.oidc_issuer, settings.oidc_client_id


@router.get("/start")
def start(settings: SettingsDep, found: OptionalSession, next: str | None = None) -> Response:
    issuer, client_id = _enabled(settings)
    if found is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    url, pending = oidc_client.start(
        issuer=issuer,
        client_id=client_id,
        client_secret=settings.oidc_client_secret,
        redirect_uri=_redirect_uri(settings),
        scope=settings.oidc_scopes,
        next=safe_next(next),
    )
    response = RedirectResponse(url, status_code=303)
    name, path = _pending_cookie(settings)
    response.set_cookie(
        name,
        pending.encode(),
        max_age=_PENDING_SECONDS,
        path=path,
        secure=is_https(settings),
        httponly=True,
        samesite="lax",  # it must come back with the provider's top-level redirect
    )
    return response


@router.get("/callback")
def callback(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
    code: Annotated[str, Query(max_length=2048)] = "",
    state: Annotated[str, Query(max_length=256)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    issuer, client_id = _enabled(settings)
    now = clock.now()
    name, path = _pending_cookie(settings)
    pending = oidc_client.Pending.decode(request.cookies.get(name, ""))

    def refuse(reason: str, email: str | None = None) -> Response:
        audit.record(
            session,
            now=now,
            actor="anonymous",
            action="session.refused",
            target_type="user",
            target_id=email or "",
            outcome="denied",
            data={"method": "oidc", "reason": reason},
            ctx=ctx,
        )
        response = sign_in_page(
            request,
            settings,
            next_path=pending.next if pending else PREFIX + "/",
            error=reason,
            status=403,
        )
        response.delete_cookie(name, path=path)
        return response

    if pending is None or not state or not hmac.compare_digest(pending.state, state):
        return refuse("the sign-in expired or did not start here; try again")
    if error or not code:
        return refuse("the identity provider did not sign you in")
    try:
        identity = oidc_client.finish(
            issuer=issuer,
            client_id=client_id,
            client_secret=settings.oidc_client_secret,
            redirect_uri=_redirect_uri(settings),
            scope=settings.oidc_scopes,
            pending=pending,
            code=code,
        )
    except AppError as err:
        return refuse(err.detail)
    domain = identity.email.rpartition("@")[2].lower()
    if settings.oidc_domains and domain not in settings.oidc_domains:
        return refuse(f"accounts of {domain} may not sign in here", identity.email)
    try:
        user = user_for_identity(
            session,
            email=identity.email,
            name=identity.name,
            create=settings.oidc_create_users,
            now=now,
            ctx=ctx,
        )
    except AppError as err:
        return refuse(err.detail, identity.email)
    _, token = start_session(
        session,
        user=user,
        method="oidc",
        policy=session_policy(settings),
        now=now,
        user_agent=request.headers.get("user-agent", ""),
        ctx=ctx,
    )
    response = RedirectResponse(pending.next, status_code=303)
    set_session_cookie(response, settings, token)
    response.delete_cookie(name, path=path)
    return response
