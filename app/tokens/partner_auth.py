"""Partner access tokens: issued by ``POST /v1/oauth/token`` (client credentials), accepted as
``Authorization: Bearer`` on API routes (:mod:`app.auth.dependencies` calls
:func:`authenticate_partner_token` for any bearer value that is not a ``wg_`` API key).

They are JWTs of their own ``typ`` (``at+jwt``) and audience (``weightgate-api``), so a
download token is refused here and a partner access token is refused at ``/v1/files``.
Each has a row (kind ``partner_access``): revoking the partner's tokens, disabling the
partner or ending its use ends the token at once, because every request re-reads the row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.access.partners import verify_partner_secret
from app.context import RequestContext
from app.errors import AppError, TokenInvalid, Unauthorized
from app.models import IssuedToken
from app.policy.principals import Principal
from app.quotas import service as quotas
from app.settings import Settings
from app.tokens import codec, events
from app.tokens import repository as repo
from app.tokens.claims import API_AUDIENCE, PartnerAccessClaims
from app.tokens.keys import KeySet
from app.tokens.service import new_jti


def partner_expectation(settings: Settings) -> codec.Expectation:
    return codec.Expectation(
        typ=codec.PARTNER_ACCESS_TYP,
        audience=API_AUDIENCE,
        issuer=settings.issuer,
        max_lifetime=settings.partner_token_ttl,
        leeway=settings.token_leeway_seconds,
    )


def invalid_client() -> Unauthorized:
    # RFC 6749 §5.2: clients switch on "error"; our clients switch on "code". Both are here.
    return Unauthorized(
        "client authentication failed", code="invalid_client", error="invalid_client"
    )


def issue_partner_access_token(
    session: Session,
    *,
    client_id: str,
    client_secret: str,
    keys: KeySet,
    settings: Settings,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[str, int]:
    """A partner access token for valid client credentials, and its lifetime in seconds."""
    partner = verify_partner_secret(session, client_id, client_secret, now)
    actor = f"client:{client_id[:64]}"
    try:
        if partner is None:
            raise invalid_client()
        actor = f"partner:{partner.id}"
        quotas.charge(session, quotas.tokens_quota(settings), key=actor, amount=1, now=now)
    except AppError as err:
        events.record_denial(
            session,
            now=now,
            actor=actor,
            action="oauth.denied",
            target_type="partner",
            target_id=actor,
            error=err,
            data={},
            ctx=ctx,
        )
        raise
    ttl = settings.partner_token_ttl
    issued_at = now.replace(microsecond=0)
    claims = PartnerAccessClaims(
        iss=settings.issuer,
        sub=actor,
        aud=API_AUDIENCE,
        iat=int(issued_at.timestamp()),
        nbf=int(issued_at.timestamp()),
        exp=int(issued_at.timestamp()) + ttl,
        jti=new_jti(),
    )
    key = keys.signing_key(now)
    token = codec.sign(claims.to_payload(), typ=codec.PARTNER_ACCESS_TYP, key=key)
    repo.add_token(
        session,
        IssuedToken(
            jti=claims.jti,
            kind="partner_access",
            kid=key.kid,
            subject=actor,
            partner_id=partner.id,
            scope={},
            issued_at=issued_at,
            expires_at=issued_at + timedelta(seconds=ttl),
            uses=0,
        ),
    )
    events.record(
        session,
        now=now,
        actor=actor,
        action="oauth.token_issued",
        target_type="token",
        target_id=claims.jti,
        data={"jti": claims.jti, "expires_in": ttl},
        ctx=ctx,
    )
    return token, ttl


def authenticate_partner_token(
    session: Session,
    value: str,
    *,
    now: datetime,
    settings: Settings,
    keys: Any,
    ctx: RequestContext | None = None,
) -> Principal:
    """The partner a bearer access token stands for; :class:`TokenInvalid` (401) otherwise,
    with a code per reason (``token_expired``, ``token_revoked``, ``token_wrong_type``, …)."""
    jti = None
    try:
        claims = PartnerAccessClaims.from_payload(
            codec.verify(value, keys=keys, expect=partner_expectation(settings), now=now)
        )
        jti = claims.jti
        found = repo.partner_access(session, claims.jti)
        if found is None:
            raise TokenInvalid("token is not one this server issued", code="token_unknown")
        row, partner = found[0], found[1]
        if row.kind != "partner_access" or row.subject != claims.sub:
            raise TokenInvalid("token is not one this server issued", code="token_unknown")
        if row.revoked_at is not None:
            raise TokenInvalid("token has been revoked", code="token_revoked")
        if partner.disabled_at is not None:
            raise TokenInvalid("the partner is disabled", code="token_principal_disabled")
    except TokenInvalid as err:
        if jti is None and isinstance(err, codec.SignedButRefused):
            signed_jti = err.claims.get("jti")
            jti = signed_jti[:64] if isinstance(signed_jti, str) else None
        events.record_denial(
            session,
            now=now,
            actor="anonymous",
            action="oauth.bearer_denied",
            target_type="token",
            target_id=jti or "",
            error=err,
            data={"jti": jti} if jti else {},
            ctx=ctx,
        )
        raise
    return Principal(kind="partner", id=partner.id, name=partner.name, via=claims.jti)
