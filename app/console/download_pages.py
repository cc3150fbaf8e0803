"""Downloading from the console, and the user's API keys.

A download token is issued by the tokens service exactly as ``POST /v1/tokens`` issues it
(same checks, audit event, quotas), shown once with a copy button, and with the commands
of :mod:`app.tokens.commands` — curl with the token, ``hf download`` and ``weightgate
download`` with the user's API key — each ending in the ``sha256sum -c`` check.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.access import apikeys, users
from app.access.router import key_out
from app.access.schemas import ApiKeyCreate
from app.console.researcher_pages import Version, validation_message
from app.console.security import PREFIX
from app.console.session import CheckedForm, Signed, form_list, page_not_found, principal_of
from app.console.templating import render
from app.console.visible import seen_manifest, seen_model
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import AppError, NotFound
from app.ids import IdPath
from app.settings import Settings
from app.tokens import commands
from app.tokens.keys import KeysDep
from app.tokens.router import token_out
from app.tokens.schemas import TokenCreate
from app.tokens.service import issue_download_token

router = APIRouter(prefix=PREFIX, include_in_schema=False)
# Lifetimes offered for a token; each is capped by the server's hard maximum.
TTL_CHOICES = ((900, "15 minutes"), (3600, "1 hour"), (21_600, "6 hours"), (86_400, "24 hours"))


def _ttl_choices(settings: Settings) -> list[tuple[int, str]]:
    return [(s, label) for s, label in TTL_CHOICES if s <= settings.token_max_ttl]


@router.get("/catalogue/{namespace}/{name}/download")
def download_form(
    request: Request,
    namespace: str,
    name: str,
    found: Signed,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    version: Version = None,
) -> Response:
    now = clock.now()
    principal = principal_of(found)
    seen_model(session, principal, namespace, name, now)
    seen = seen_manifest(session, principal, namespace, name, version=version, now=now)
    return render(
        request,
        "download.html",
        {"manifest": seen, "ttls": _ttl_choices(settings), "error": ""},
    )


async def _choice(request: Request, form: CheckedForm) -> tuple[list[str], list[str]]:
    """The components and files ticked (repeated fields), read after the form's checks."""
    return await form_list(request, "component"), await form_list(request, "path")


Choice = Annotated[tuple[list[str], list[str]], Depends(_choice)]


@router.post("/catalogue/{namespace}/{name}/download")
def issue_token(
    request: Request,
    namespace: str,
    name: str,
    found: Signed,
    form: CheckedForm,
    choice: Choice,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: KeysDep,
    ctx: ContextDep,
) -> Response:
    """``POST /v1/tokens`` from a form: the token is on this answer only."""
    components, paths = choice
    now = clock.now()
    principal = principal_of(found)
    model, _ = seen_model(session, principal, namespace, name, now)
    version = form.get("version") or None
    offered = {str(seconds): seconds for seconds, _ in _ttl_choices(settings)}

    def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
        seen = seen_manifest(session, principal, namespace, name, version=version, now=now)
        ttls = _ttl_choices(settings)
        context = {"manifest": seen, "ttls": ttls, "error": error}
        return render(request, "download.html", context, status=status, headers=headers)

    if not components and not paths:
        return again("Choose at least one component or file.", 422)
    try:
        # The API's own request schema: the same bounds on what may be asked for.
        body = TokenCreate(
            model=model.repo_id,
            version=version,
            # Files chosen one by one narrow the token to them (least privilege).
            components=None if paths else components,
            paths=paths or None,
            ttl_seconds=offered.get(form.get("ttl", "")),
        )
    except ValidationError as e:
        return again(validation_message(e), 422)
    try:
        issued = issue_download_token(
            session,
            principal=principal,
            keys=keys,
            settings=settings,
            now=now,
            model=body.model,
            version=body.version,
            components=body.components,
            paths=body.paths,
            ttl_seconds=body.ttl_seconds,
            max_uses=None,
            ctx=ctx,
        )
    except AppError as e:
        session.rollback()
        # Retry-After travels along, when over the token quota.
        return again(e.detail, e.status, e.headers)
    token = token_out(issued)
    shown = commands.render(token, base_url=settings.effective_public_url)
    return render(request, "download_token.html", {"token": token, "commands": shown})


# --- API keys -----------------------------------------------------------------------------


def _keys_page(
    request: Request,
    session: Session,
    user_id: int,
    *,
    created: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    rows = apikeys.keys_page(session, user_id, after=None, limit=200)
    return render(
        request,
        "keys.html",
        {"keys": [key_out(r) for r in rows], "created": created, "error": error},
        status=status,
    )


@router.get("/keys")
def keys_page(request: Request, found: Signed, session: SessionDep) -> Response:
    return _keys_page(request, session, found.user.id)


@router.post("/keys")
def create_key(
    request: Request,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """``POST /v1/me/api-keys`` from a form; the key is on this answer only."""
    now = clock.now()
    user = users.require_user(session, found.user.id)
    days = form.get("expires_in_days", "").strip()
    if days and (not days.isdigit() or len(days) > 5):
        error = "Expiry must be a whole number of days, or empty for none."
        return _keys_page(request, session, user.id, error=error, status=422)
    try:
        # The API's own request schema: the same bounds (name length, 1 to 3650 days).
        body = ApiKeyCreate(
            name=form.get("name", "").strip(), expires_in_days=int(days) if days else None
        )
    except ValidationError as e:
        error = validation_message(e)
        return _keys_page(request, session, user.id, error=error, status=422)
    expires_at = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    try:
        _, key = apikeys.issue_key(
            session, user=user, name=body.name, expires_at=expires_at, now=now, ctx=ctx
        )
    except AppError as e:
        session.rollback()
        return _keys_page(request, session, user.id, error=e.detail, status=e.status)
    return _keys_page(request, session, user.id, created=key)


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    key_id: IdPath,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """``DELETE /v1/me/api-keys/{id}``: another user's key id is the same 404 as none."""
    try:
        apikeys.revoke_key(session, user_id=found.user.id, key_id=key_id, now=clock.now(), ctx=ctx)
    except NotFound as e:
        raise page_not_found() from e
    return RedirectResponse(PREFIX + "/keys", status_code=303)
