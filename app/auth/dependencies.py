"""FastAPI dependencies that say who is calling.

``Authorization: Bearer wg_…`` is a user's API key (also accepted as a Hugging Face token);
any other bearer value is a partner access token from ``/v1/oauth/token``. Download tokens are
*not* accepted here: they only open ``/v1/files`` (see :mod:`app.delivery`).

This package sits below the domains: every router depends on it. So it checks credentials
through :class:`Authenticators`, which :func:`app.main.create_app` builds from the access
domain (API keys) and the tokens domain (partner access tokens); importing those here would
make each of them import the other through this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.context import ClockDep, RequestContext, get_context
from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.parts import parts_of
from app.policy.principals import ANONYMOUS, Principal


class ApiKeyAuthenticator(Protocol):
    def __call__(self, session: Session, key: str, *, now: datetime) -> Principal | None:
        """The user a ``wg_`` API key belongs to; ``None`` if unknown, revoked or expired."""


class PartnerTokenAuthenticator(Protocol):
    def __call__(
        self, session: Session, value: str, *, now: datetime, ctx: RequestContext
    ) -> Principal:
        """The partner a bearer access token stands for; raises a 401 otherwise."""


@dataclass(frozen=True)
class Authenticators:
    api_key: ApiKeyAuthenticator
    partner_token: PartnerTokenAuthenticator


# The OpenAPI security scheme of every route that reads the caller (FastAPI lists it on each
# operation that depends on it): /docs gets an Authorize button, and "Try it out" sends the
# value as ``Authorization: Bearer …``. It parses nothing itself (auto_error=False): the
# header is read by bearer_value below, which answers a malformed one with our own 401.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="wg_… API key, or a partner access token",
    description=(
        "A user's API key (`wg_…`), or a partner's access token from `POST /v1/oauth/token`. "
        "Optional on routes open to everyone: without it you are anonymous."
    ),
    auto_error=False,
)
BearerSchemeDep = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def bearer_value(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(
            "Authorization header must be 'Bearer <credential>'", code="malformed_authorization"
        )
    return value.strip()


def get_principal(
    request: Request, session: SessionDep, clock: ClockDep, _scheme: BearerSchemeDep = None
) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    value = bearer_value(request)
    if value is None:
        principal = ANONYMOUS
    else:
        check = parts_of(request.app).authenticators
        if value.startswith("wg_"):
            found = check.api_key(session, value, now=clock.now())
            if found is None:
                raise Unauthorized("API key is unknown, revoked or expired", code="invalid_api_key")
            principal = found
        else:
            principal = check.partner_token(
                session, value, now=clock.now(), ctx=get_context(request)
            )
    request.state.principal = principal
    return principal


def require_authenticated(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.kind == "anonymous":
        raise Unauthorized("this route needs an API key or a partner access token")
    return principal


def require_user(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.kind == "anonymous":
        raise Unauthorized("this route needs an API key")
    if principal.kind != "user":
        raise Forbidden(
            "this route needs a user's API key, not a partner token", code="user_required"
        )
    return principal


def require_admin(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this route needs the admin role", code="admin_required")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
AuthenticatedDep = Annotated[Principal, Depends(require_authenticated)]
UserDep = Annotated[Principal, Depends(require_user)]
AdminDep = Annotated[Principal, Depends(require_admin)]
