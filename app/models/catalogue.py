"""Models, releases, components with their schedules, files and the stored objects behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("namespace", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace: Mapped[str] = mapped_column(String(96))
    name: Mapped[str] = mapped_column(String(96))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    license: Mapped[str] = mapped_column(Text, default="")
    license_sha256: Mapped[str] = mapped_column(String(64))
    auto_approve: Mapped[bool] = mapped_column(default=False)
    request_fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        UniqueConstraint("model_id", "revision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | published
    revision: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]


class Component(Base):
    """A named group of files in a release. Its schedule is its :class:`Stage` rows.

    ``held_at`` freezes the schedule (stages after it stop applying until resumed), placed
    by ``held_by`` for ``hold_reason``;
    ``restricted_tier`` is an emergency ceiling no stage can open past until lifted.
    """

    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("release_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    held_at: Mapped[datetime | None]
    hold_reason: Mapped[str | None] = mapped_column(Text)
    # The audit subject of who placed the hold (an admin, or system:safety-policy).
    held_by: Mapped[str | None] = mapped_column(String(64))
    restricted_tier: Mapped[str | None] = mapped_column(String(16))
    restricted_at: Mapped[datetime | None]
    restrict_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class HubView(Base):
    """A revision id handed to Hugging Face clients for a release seen with some of its
    components: a different set of visible files is a different commit to them, and every
    id handed out keeps resolving (app/hfcompat/views.py). The id is derived from the
    release's revision and the component names, so it is the same on every replica; the
    row makes it resolvable later. A release seen whole is its own revision (no row)."""

    __tablename__ = "hub_views"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[str] = mapped_column(String(40), unique=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    component_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class Stage(Base):
    """One step of a schedule: from ``at`` on, the component is open to ``tier``.

    ``transitioned_at`` is set once by the scheduler that recorded the lift (compare-and-set);
    ``reminded_at`` once the ``embargo.upcoming`` reminder went out.
    """

    __tablename__ = "stages"
    __table_args__ = (
        UniqueConstraint("component_id", "at"),
        Index("ix_stages_due", "transitioned_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"))
    tier: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    created_at: Mapped[datetime]
    transitioned_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]


class Transition(Base):
    """The record that a stage took effect. ``stage_id`` unique: the exactly-once backstop."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    stage_id: Mapped[int | None] = mapped_column(
        ForeignKey("stages.id", ondelete="SET NULL"), unique=True
    )
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # lifted | held | resumed | restricted
    tier: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(128), default="")


class StoredObject(Base):
    """A content-addressed blob in the object store, shared by every file with that hash."""

    __tablename__ = "stored_objects"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class ReleaseFile(Base):
    __tablename__ = "release_files"
    __table_args__ = (UniqueConstraint("release_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    component_id: Mapped[int] = mapped_column(
        ForeignKey("components.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(ForeignKey("stored_objects.sha256"), index=True)
    created_at: Mapped[datetime]
