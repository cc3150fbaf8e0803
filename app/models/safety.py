"""Safety reports from people with early access, their triage history, each model's
automatic hold policy, and the holds that policy placed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class SafetyReport(Base):
    """A problem a principal who could download a release found in it.

    ``reporter`` is the principal's subject (``user:7``, ``partner:2``): the key by which a
    reporter sees their own reports and counts once towards a safety policy; ``user_id`` or
    ``partner_id`` links the same principal for joins. ``components`` lists the report's
    components (none: the release as a whole), one row each in
    :class:`SafetyReportComponent` for the policy's per-component counts.
    """

    __tablename__ = "safety_reports"
    __table_args__ = (
        Index("ix_safety_reports_reporter", "reporter", "id"),
        Index("ix_safety_reports_status", "status", "id"),
        Index("ix_safety_reports_model", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    reporter: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text, default="")
    # new | triaged | actioned | dismissed | duplicate | withdrawn
    status: Mapped[str] = mapped_column(String(16), default="new")
    duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("safety_reports.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    triaged_at: Mapped[datetime | None]  # when it first left ``new`` (time to triage)


class SafetyReportComponent(Base):
    """One component a report names: what the policy counts per component."""

    __tablename__ = "safety_report_components"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("safety_reports.id", ondelete="CASCADE"), primary_key=True
    )
    component_id: Mapped[int] = mapped_column(
        ForeignKey("components.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SafetyReportUpdate(Base):
    """A step of a report's history (a status change, a note): what its reporter sees.

    ``actor`` is kept for the admins' view; reporters see the status and the note only."""

    __tablename__ = "safety_report_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("safety_reports.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    previous_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))


class SafetyPolicy(Base):
    """A model's automatic hold policy. No row: off."""

    __tablename__ = "safety_policies"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(default=False)
    min_reporters: Mapped[int] = mapped_column(default=3)
    min_severity: Mapped[str] = mapped_column(String(16), default="high")
    window_hours: Mapped[int] = mapped_column(default=72)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class SafetyHold(Base):
    """A hold the policy placed. ``stage_id`` is unique: the policy holds a given stage at
    most once, so once an admin resumes it, the same reports cannot hold it again (and two
    replicas deciding at once cannot both hold it: the backstop behind the row lock)."""

    __tablename__ = "safety_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    component_id: Mapped[int] = mapped_column(
        ForeignKey("components.id", ondelete="CASCADE"), index=True
    )
    stage_id: Mapped[int | None] = mapped_column(
        ForeignKey("stages.id", ondelete="SET NULL"), unique=True
    )
    stage_tier: Mapped[str] = mapped_column(String(16))
    stage_at: Mapped[datetime]
    placed_at: Mapped[datetime]
    reports: Mapped[list[int]] = mapped_column(JSON, default=list)
    reporters: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text)
