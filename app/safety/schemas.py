"""Shapes of the safety API: reports as their reporter and as admins see them, triage
changes, and a model's automatic hold policy."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.ids import IdField
from app.inputs import StrictInput
from app.schedule.schemas import ScheduleOut


class Category(StrEnum):
    HARMFUL_CAPABILITY = "harmful_capability"
    SECURITY = "security"  # jailbreaks, prompt injection, model-file exploits
    PRIVACY = "privacy"  # memorised personal data
    BIAS = "bias"
    LICENSE = "license"  # license or provenance
    OTHER = "other"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self)


SEVERITIES: tuple[Severity, ...] = tuple(Severity)

# new → triaged → actioned | dismissed | duplicate; withdrawn by the reporter.
ReportStatus = Literal["new", "triaged", "actioned", "dismissed", "duplicate", "withdrawn"]
TriageStatus = Literal["triaged", "actioned", "dismissed", "duplicate"]
# What still counts towards a policy: reports nobody has closed.
OPEN_STATUSES: tuple[str, ...] = ("new", "triaged")

ComponentName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ReportCreate(StrictInput):
    version: str = Field(
        min_length=1,
        max_length=64,
        description="the release: a version, a revision id, or 'main' (the latest)",
    )
    components: list[ComponentName] = Field(
        default_factory=list,
        max_length=64,
        description="the components the problem is in; none for the release as a whole",
    )
    category: Category
    severity: Severity
    description: str = Field(min_length=1, max_length=20_000)
    evidence: str = Field(
        default="",
        max_length=100_000,
        description="prompts, outputs, steps to reproduce (text)",
    )


class ReportUpdateOut(BaseModel):
    at: datetime
    status: ReportStatus
    previous_status: ReportStatus | None
    note: str | None


class ReportOut(BaseModel):
    """A report as its reporter sees it."""

    id: int
    model: str
    version: str
    components: list[str]
    category: Category
    severity: Severity
    description: str
    evidence: str
    status: ReportStatus
    duplicate_of: int | None
    created_at: datetime
    updated_at: datetime
    updates: list[ReportUpdateOut] = Field(description="status changes and notes, oldest first")


class AdminReportUpdateOut(ReportUpdateOut):
    actor: str


class AdminReportOut(ReportOut):
    """A report as admins see it: who filed it, and who changed it."""

    reporter: str = Field(description="the reporter's principal: user:<id> or partner:<id>")
    reporter_name: str = Field(description="the user's email or the partner's name")
    triaged_at: datetime | None
    updates: list[AdminReportUpdateOut]  # type: ignore[assignment]


class ReportTriage(StrictInput):
    status: TriageStatus | None = Field(
        default=None, description="the new status; omit to add a note only"
    )
    note: str | None = Field(
        default=None, min_length=1, max_length=10_000, description="shown to the reporter"
    )
    duplicate_of: IdField | None = Field(
        default=None, description="with status 'duplicate': the report this one repeats"
    )


class ReportWithdraw(StrictInput):
    note: str | None = Field(default=None, min_length=1, max_length=10_000)


class ReportHoldIn(StrictInput):
    component: ComponentName | None = Field(
        default=None, description="the component to hold; default: the report's only component"
    )
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="added to the hold's reason, after the report it links",
    )


class ReportHoldOut(BaseModel):
    report: AdminReportOut
    schedule: ScheduleOut


class PolicyIn(StrictInput):
    enabled: bool = Field(description="off by default: reports then never hold anything")
    min_reporters: int = Field(
        default=3, ge=1, le=1000, description="K: distinct reporters with access it takes"
    )
    min_severity: Severity = Field(
        default=Severity.HIGH, description="S: reports below this severity do not count"
    )
    window_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 365,
        description="W: only a next stage due within this many hours is held",
    )


class PolicyHoldOut(BaseModel):
    version: str
    component: str
    placed_at: datetime
    stage_tier: str
    stage_at: datetime
    reports: list[int]
    active: bool = Field(description="the component is still held by this decision")


class PolicyOut(BaseModel):
    model: str
    enabled: bool
    min_reporters: int
    min_severity: Severity
    window_hours: int
    updated_at: datetime | None
    updated_by: str | None
    holds: list[PolicyHoldOut] = Field(description="holds the policy placed, newest first")
