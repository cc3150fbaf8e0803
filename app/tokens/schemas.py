"""Request and response bodies of the token routes.

Request models forbid unknown members: a caller sending ``tier``, ``exp``, ``scope`` or a
storage key gets a 422 instead of having it silently ignored, and nothing the caller sends
is ever copied into a token except the choices listed here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.inputs import StrictInput
from app.policy.tiers import Tier


class TokenCreate(StrictInput):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(min_length=3, max_length=193, description="namespace/name")
    version: str | None = Field(
        default=None, max_length=64, description="default: the latest published release"
    )
    components: list[str] | None = Field(default=None, min_length=1, max_length=64)
    paths: list[str] | None = Field(default=None, min_length=1, max_length=128)
    ttl_seconds: int | None = Field(default=None, ge=1, description="default 15 min")
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)


class ScopeOut(BaseModel):
    model: str
    version: str
    revision: str
    components: list[str]
    paths: list[str] | None


class TokenFile(BaseModel):
    path: str
    size: int
    sha256: str
    component: str
    url: str


class TokenOut(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name, not a secret
    jti: str
    issued_at: datetime
    expires_at: datetime
    tier: Tier
    max_uses: int | None
    scope: ScopeOut
    files: list[TokenFile]


class TokenInfo(BaseModel):
    """A token's row; never the token itself (it is not stored)."""

    jti: str
    kind: str
    subject: str
    tier: Tier | None
    scope: ScopeOut | None
    issued_at: datetime
    expires_at: datetime
    max_uses: int | None
    uses: int
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None
    status: Literal["active", "expired", "revoked", "used_up"]


class RevokeIn(StrictInput):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(default="", max_length=200)


class PrincipalRevokeOut(BaseModel):
    principal: str
    revoked: int


class AccessTokenOut(BaseModel):
    """RFC 6749 §5.1."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int
