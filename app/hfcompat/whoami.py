"""``GET /api/whoami-v2``: who a Hugging Face token is, so ``hf auth login --token wg_…`` and
``hf auth whoami`` work against weightgate.

``huggingface_hub`` (``_login.py``) validates a token by this route, then stores it under
``auth.accessToken.displayName`` (falling back to ``oauth-<name>``); ``hf auth whoami`` prints
``name`` and ``orgs``. A missing or bad token is the 401 the client reports as an invalid
token (``X-Error-Message: Invalid credentials in Authorization header``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.access import repository as access_repo
from app.access.apikeys import api_key_by_value
from app.auth.dependencies import bearer_value
from app.db import SessionDep
from app.errors import Unauthorized, problems
from app.hfcompat import errors
from app.hfcompat.caller import HfPrincipalDep

router = APIRouter(tags=["huggingface"])


class AccessToken(BaseModel):
    displayName: str
    role: Literal["read"]  # the Hub routes only read
    createdAt: datetime | None


class TokenAuth(BaseModel):
    type: Literal["access_token"] = "access_token"
    accessToken: AccessToken


class WhoAmI(BaseModel):
    type: Literal["user", "org"]
    id: str
    name: str
    fullname: str
    email: str | None
    orgs: list[dict[str, str]]
    auth: TokenAuth


@router.get("/api/whoami-v2", responses=problems(401))
def whoami(request: Request, principal: HfPrincipalDep, session: SessionDep) -> WhoAmI:
    """The user (API key) or partner (access token) a Hugging Face token stands for."""
    if principal.kind == "anonymous":
        raise errors.with_invalid_credentials(
            Unauthorized("send your API key as the token", code="credentials_required")
        )
    assert principal.id is not None
    if principal.kind == "partner":
        partner = access_repo.partner(session, principal.id)
        if partner is None:
            raise errors.with_invalid_credentials(
                Unauthorized("this partner no longer exists", code="invalid_credentials")
            )
        return WhoAmI(
            type="org",
            id=f"partner:{partner.id}",
            name=partner.name,
            fullname=partner.name,
            email=None,
            orgs=[],
            auth=TokenAuth(
                accessToken=AccessToken(
                    displayName=f"weightgate partner {partner.name}", role="read", createdAt=None
                )
            ),
        )
    user = access_repo.user(session, principal.id)
    key = api_key_by_value(session, bearer_value(request) or "")
    # The key just authenticated this user.
    assert user is not None
    assert key is not None
    return WhoAmI(
        type="user",
        id=f"user:{user.id}",
        name=user.email,
        fullname=user.name or user.email,
        email=user.email,
        orgs=[],
        auth=TokenAuth(
            accessToken=AccessToken(
                # Where `hf auth login` stores the token: the key's name, else its prefix.
                displayName=key.name or key.prefix,
                role="read",
                createdAt=key.created_at,
            )
        ),
    )
