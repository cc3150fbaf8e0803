"""Request and response bodies of the access routes: users, API keys, partners, access
requests and grants."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    model_validator,
)

from app.catalogue.schemas import ManifestComponent
from app.ids import IdField
from app.inputs import StrictInput
from app.instants import Instant

# Enough for any approval queue an admin works through at once; bounded so one request
# cannot hold the database for long.
MAX_BULK = 5000


# --- users and API keys -----------------------------------------------------------------


class RegisterIn(StrictInput):
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    created_at: datetime


class RegisterOut(BaseModel):
    user: UserOut
    api_key: str = Field(description="shown once; store it now")


Role = Literal["admin", "researcher"]


class UserCreate(StrictInput):
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)
    role: Role = "researcher"
    partner_id: IdField | None = Field(
        default=None, description="the partner organisation this person works for"
    )


class UserPatch(StrictInput):
    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    disabled: StrictBool | None = Field(
        default=None,
        description="true: the user's API keys stop working and their download tokens are "
        "revoked, at once; false: the keys work again (revoked tokens stay revoked)",
    )
    partner_id: IdField | None = Field(
        default=None,
        description="link the user to a partner organisation (they then see its agreement "
        "and activity and may rotate its secret); null unlinks. Their clearance is unchanged",
    )


class UserDetail(UserOut):
    disabled_at: datetime | None
    partner_id: int | None = None


class UserCreated(BaseModel):
    user: UserDetail
    api_key: str = Field(description="the user's first API key, shown once: hand it over")


class MeOut(BaseModel):
    kind: Literal["user", "partner"]
    id: int
    name: str
    email: str | None = None
    role: str | None = None
    client_id: str | None = None
    created_at: datetime
    models: list[str] | None = Field(
        default=None, description="partners: the models their agreements cover now"
    )
    partner_id: int | None = Field(
        default=None, description="users: the partner organisation they work for, if any"
    )


class ApiKeyCreate(StrictInput):
    name: str = Field(default="", max_length=100)
    expires_at: Instant | None = None
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        return self


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class LeakedKey(StrictInput):
    key: str = Field(max_length=200, description="the clear API key that was found (wg_…)")


class RevokedKey(ApiKeyOut):
    user_id: int


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="shown once; store it now")


# --- partners -----------------------------------------------------------------------------


class AgreementIn(StrictInput):
    model: str = Field(max_length=193, examples=["acme/atlas-7b"])
    ends_at: Instant | None = None


class PartnerCreate(StrictInput):
    name: str = Field(min_length=1, max_length=200)
    models: list[str | AgreementIn] = Field(default_factory=list, max_length=1000)
    secret_expires_at: Instant | None = None


# A planned rotation's overlap: long enough for a partner's deploy cycle, not a second key.
MAX_SECRET_OVERLAP_SECONDS = 7 * 86_400


class PartnerPatch(StrictInput):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    models: list[str | AgreementIn] | None = Field(
        default=None,
        max_length=1000,
        description="the full list of covered models; a model left out has its agreement "
        "ended now (and the partner's tokens for it revoked)",
    )
    rotate_secret: bool = False
    previous_secret_valid_for_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_SECRET_OVERLAP_SECONDS,
        description="with rotate_secret: keep accepting the old secret this long, so the "
        "partner can deploy the new one without downtime (a planned rotation; its access "
        "tokens stay valid). 0, the default, is the answer to a leak: the old secret stops "
        "at once, with any earlier one still in its overlap, and the tokens are revoked",
    )
    secret_expires_at: Instant | None = None
    disabled: bool | None = None


class AgreementOut(BaseModel):
    model: str
    created_at: datetime
    ends_at: datetime | None
    active: bool


class PartnerOut(BaseModel):
    id: int
    name: str
    client_id: str
    created_at: datetime
    disabled_at: datetime | None
    secret_rotated_at: datetime | None
    secret_expires_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="until when the secret replaced by a planned rotation works"
    )
    models: list[AgreementOut]


class PartnerWithSecret(PartnerOut):
    client_secret: str | None = Field(
        default=None, description="only when created or rotated; shown once"
    )


# --- access requests and grants -----------------------------------------------------------


class AccessRequestCreate(StrictInput):
    answers: dict[StrictStr, StrictStr | StrictBool] = Field(default_factory=dict, max_length=32)
    accept_license: bool
    license_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the SHA-256 of the license text the user read; refused if it changed",
    )


class UserRef(BaseModel):
    id: int
    email: str


class AccessRequestOut(BaseModel):
    id: int
    model: str
    user: UserRef
    status: Literal["pending", "approved", "denied"]
    answers: dict[str, str | bool]
    license_sha256: str
    reason: str | None
    created_at: datetime
    decided_at: datetime | None
    decided_by: int | None


class ApproveIn(StrictInput):
    reason: str | None = Field(default=None, max_length=2000)


class DenyIn(StrictInput):
    reason: str = Field(min_length=1, max_length=2000)


class BulkDecision(StrictInput):
    action: Literal["approve", "deny"]
    ids: list[IdField] = Field(min_length=1, max_length=MAX_BULK)
    reason: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _deny_needs_reason(self) -> Self:
        if self.action == "deny" and not (self.reason and self.reason.strip()):
            raise ValueError("denying needs a reason")
        return self


class BulkSkipped(BaseModel):
    id: int
    code: Literal["not_found", "not_pending"]


class BulkResult(BaseModel):
    action: Literal["approve", "deny"]
    done: list[int]
    skipped: list[BulkSkipped]


class GrantOut(BaseModel):
    model: str
    user: UserRef
    request_id: int | None
    granted_by: int | None
    created_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None


# --- a partner's own people (/v1/me/partner) ----------------------------------------------


class PartnerSelfOut(PartnerOut):
    tier: Literal["partner"] = Field(
        default="partner", description="the clearance the agreement gives on its models"
    )


class SecretRotation(StrictInput):
    previous_secret_valid_for_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_SECRET_OVERLAP_SECONDS,
        description="keep accepting the old secret this long (a planned rotation: deploy the "
        "new one meanwhile; access tokens stay valid). 0, the default, is the answer to a "
        "leak: the old secret and its access tokens stop at once",
    )


class PartnerActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    outcome: str
    target_type: str
    target_id: str
    data: dict[str, Any]
    client_addr: str | None


class MyGrantOut(BaseModel):
    """One of the caller's grants and what it opens: the components of the model's latest
    release as the caller sees them now (``state``: downloadable, or opens at a date)."""

    model: str
    request_id: int | None
    created_at: datetime
    active: bool
    revoked_at: datetime | None
    revoke_reason: str | None
    version: str | None = Field(description="the latest release the caller may know about")
    revision: str | None
    components: list[ManifestComponent]
