"""Request and response bodies of the catalogue routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.inputs import StrictInput, When, instant
from app.policy.tiers import Tier


class StageIn(StrictInput):
    tier: Tier
    at: When

    def resolve(self, now: datetime) -> tuple[Tier, datetime]:
        """The stage with a relative ``at`` fixed at ``now``, the instant of the call."""
        return self.tier, instant(self.at, now=now)


class RequestField(StrictInput):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    type: Literal["text", "email", "select", "checkbox", "country"] = "text"
    label: str = Field(default="", max_length=200)
    required: bool = True
    options: list[str] = Field(default_factory=list, max_length=100)


class ModelCreate(StrictInput):
    id: str = Field(max_length=193, examples=["acme/atlas-7b"])
    display_name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=20_000)
    license: str = Field(default="", max_length=200_000)
    auto_approve: bool = False
    request_fields: list[RequestField] = Field(default_factory=list, max_length=32)


class ModelPatch(StrictInput):
    display_name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    license: str | None = Field(default=None, max_length=200_000)
    auto_approve: bool | None = None
    request_fields: list[RequestField] | None = Field(default=None, max_length=32)


class ModelOut(BaseModel):
    id: str
    display_name: str
    description: str
    license: str
    license_sha256: str
    auto_approve: bool
    request_fields: list[RequestField]
    created_at: datetime
    updated_at: datetime
    latest_version: str | None = None
    clearance: Tier | None = None


class ReleaseCreate(StrictInput):
    version: str = Field(max_length=64)
    notes: str = Field(default="", max_length=20_000)


class ReleaseOut(BaseModel):
    model: str
    version: str
    notes: str
    status: Literal["draft", "published"]
    revision: str | None
    created_at: datetime
    published_at: datetime | None
    file_count: int
    total_size: int


class PublishOut(BaseModel):
    version: str
    revision: str
    published_at: datetime


class StageOut(BaseModel):
    tier: Tier
    at: datetime


class ComponentCreate(StrictInput):
    name: str = Field(max_length=64)
    schedule: list[StageIn] = Field(default_factory=list, max_length=16)


class ComponentOut(BaseModel):
    name: str
    tier: Tier
    schedule: list[StageOut]
    next: StageOut | None
    held: bool
    hold_reason: str | None
    restricted_tier: Tier | None
    restrict_reason: str | None
    file_count: int


class FileOut(BaseModel):
    path: str
    size: int
    sha256: str
    component: str


class ManifestFile(BaseModel):
    path: str
    size: int
    sha256: str
    component: str
    tier: Tier


class GrantOutlook(BaseModel):
    downloadable: bool = Field(description="an approved access request would open it now")
    opens_at: datetime | None = Field(
        description="otherwise, when it opens to approved researchers as scheduled (null: "
        "no stage opens it to them, or its schedule is held or restricted)"
    )


# What a component is to the caller now, in one word (the console's badge, the CLI's column):
# downloadable; opens (to them, at opens_to_you_at); needs_grant (an approved access request
# would open it now, or sooner: see with_grant); held (held or restricted, no date); closed
# (nothing scheduled opens it to them).
ComponentState = Literal["downloadable", "opens", "needs_grant", "held", "closed"]


class ManifestComponent(BaseModel):
    name: str
    tier: Tier
    next: StageOut | None
    downloadable: bool
    opens_to_you_at: datetime | None = None
    held: bool = False
    state: ComponentState = Field(
        default="closed",
        description="downloadable | opens (at opens_to_you_at) | needs_grant (with_grant says "
        "when a grant would open it) | held (held or restricted) | closed",
    )
    with_grant: GrantOutlook | None = Field(
        default=None,
        description="for callers without an access grant (clearance open): what an approved "
        "access request to the model would make of this component",
    )
    code: str | None = Field(
        default=None,
        description="why the caller may not download it now, as the problem code a token "
        "request or a download would answer: access_grant_required | embargoed | "
        "not_open_to_you; null when downloadable",
    )


class Manifest(BaseModel):
    model: str
    version: str
    revision: str | None
    status: Literal["draft", "published"]
    clearance: Tier
    files: list[ManifestFile]
    components: list[ManifestComponent]
