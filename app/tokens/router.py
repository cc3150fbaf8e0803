"""HTTP routes of the tokens domain (thin: parse, call the service, shape the answer)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import AdminDep, AuthenticatedDep
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import BadRequest, PayloadTooLarge, problems
from app.models import IssuedToken
from app.revocation import service as revocation
from app.tokens import schemas, service
from app.tokens.keys import KeysDep
from app.tokens.partner_auth import invalid_client, issue_partner_access_token

router = APIRouter(tags=["tokens"])
_MAX_FORM_BYTES = 4096


@router.get("/.well-known/jwks.json")
async def jwks(keys: KeysDep, clock: ClockDep) -> JSONResponse:
    """Public keys that verify our tokens now (RFC 7517 JWK Set)."""
    body: dict[str, Any] = keys.jwks(clock.now())
    # Short cache: a rotated key is announced here before it signs (``--activate-in``).
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


def _oauth_error(code: str, detail: str) -> BadRequest:
    return BadRequest(detail, code=code, error=code)


async def _client_credentials(request: Request) -> tuple[str, str]:
    """RFC 6749 §4.4 form body; credentials in the body or as HTTP Basic (§2.3.1)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise _oauth_error("invalid_request", "send an application/x-www-form-urlencoded body")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise PayloadTooLarge("token request body is too large")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as e:
        raise _oauth_error("invalid_request", "malformed form body") from e
    form: dict[str, str] = {}
    for k, v in pairs:
        if k in form:
            raise _oauth_error("invalid_request", f"parameter {k} given twice")
        form[k] = v
    if form.get("grant_type") != "client_credentials":
        raise _oauth_error("unsupported_grant_type", "only grant_type=client_credentials")
    basic = _basic_credentials(request)
    if basic is not None:
        if "client_secret" in form:
            raise _oauth_error("invalid_request", "use one client authentication method")
        return basic
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        raise invalid_client()
    return client_id, secret


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client()
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise invalid_client() from e
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client()
    return unquote(client_id), unquote(secret)


@router.post(
    "/v1/oauth/token",
    responses=problems(400, 401, 413, 429),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }
                }
            }
        }
    },
)
async def oauth_token(
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> JSONResponse:
    """OAuth 2.0 client credentials grant for partners: a partner access token."""
    client_id, secret = await _client_credentials(request)
    token, ttl = await run_in_threadpool(
        issue_partner_access_token,
        session,
        client_id=client_id,
        client_secret=secret,
        keys=keys,
        settings=settings,
        now=clock.now(),
        ctx=ctx,
    )
    out = schemas.AccessTokenOut(access_token=token, expires_in=ttl)
    # RFC 6749 §5.1: token responses must not be cached.
    return JSONResponse(
        out.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


def token_out(issued: service.IssuedDownload) -> schemas.TokenOut:
    """The answer to an issued download token (the console shows the same)."""
    c = issued.claims
    return schemas.TokenOut(
        token=issued.token,
        jti=c.jti,
        issued_at=issued.issued_at,
        expires_at=issued.expires_at,
        tier=c.tier,
        max_uses=issued.max_uses,
        scope=schemas.ScopeOut(**c.scope.to_json()),
        files=[schemas.TokenFile(**f.__dict__) for f in issued.files],
    )


@router.post("/v1/tokens", status_code=201, responses=problems(401, 403, 404, 409, 422, 429))
def create_token(
    body: schemas.TokenCreate,
    session: SessionDep,
    principal: AuthenticatedDep,
    keys: KeysDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> JSONResponse:
    """A download token for files of a release the caller may download now."""
    issued = service.issue_download_token(
        session,
        principal=principal,
        keys=keys,
        settings=settings,
        now=clock.now(),
        model=body.model,
        version=body.version,
        components=body.components,
        paths=body.paths,
        ttl_seconds=body.ttl_seconds,
        max_uses=body.max_uses,
        ctx=ctx,
    )
    out = token_out(issued)
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )


def token_info(row: IssuedToken, now: datetime) -> schemas.TokenInfo:
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at <= now:
        status = "expired"
    elif row.max_uses is not None and row.uses >= row.max_uses:
        status = "used_up"
    else:
        status = "active"
    return schemas.TokenInfo(
        jti=row.jti,
        kind=row.kind,
        subject=row.subject,
        tier=row.tier,
        scope=schemas.ScopeOut(**row.scope) if row.scope else None,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_reason=row.revoked_reason,
        status=status,
    )


@router.get("/v1/tokens/{jti}", responses=problems(401, 404))
def get_token(
    jti: str, session: SessionDep, principal: AuthenticatedDep, clock: ClockDep
) -> schemas.TokenInfo:
    """A token's state (uses, expiry, revocation): its holder's or, for admins, anyone's."""
    return token_info(revocation.visible_token(session, jti, principal=principal), clock.now())


@router.delete("/v1/tokens/{jti}", responses=problems(401, 404, 422))
def delete_token(
    jti: str,
    session: SessionDep,
    principal: AuthenticatedDep,
    clock: ClockDep,
    ctx: ContextDep,
    body: schemas.RevokeIn | None = None,
) -> schemas.TokenInfo:
    """Revoke a token now (idempotent). Its next use is refused with ``token_revoked``."""
    row = revocation.revoke_token(
        session,
        jti=jti,
        principal=principal,
        now=clock.now(),
        reason=body.reason if body else "",
        ctx=ctx,
    )
    return token_info(row, clock.now())


@router.post("/v1/principals/{principal_id}/revoke-tokens", responses=problems(401, 403, 404, 422))
def revoke_principal_tokens(
    principal_id: str,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
    body: schemas.RevokeIn | None = None,
) -> schemas.PrincipalRevokeOut:
    """Revoke every live token of ``user:<id>`` or ``partner:<id>`` (admin)."""
    count = revocation.revoke_principal_tokens(
        session,
        principal_id=principal_id,
        admin=admin,
        now=clock.now(),
        reason=body.reason if body else "",
        ctx=ctx,
    )
    return schemas.PrincipalRevokeOut(principal=principal_id, revoked=count)
