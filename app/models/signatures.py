"""Release signatures: one row per signed component, pointing at its signature file."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ReleaseSignature(Base):
    """The signature of one component of a published release (``signatures/<c>.sig``, a
    file of that component). Written once at publish; only the revocation fields change
    afterwards, and the file's bytes never do."""

    __tablename__ = "release_signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    component_id: Mapped[int] = mapped_column(
        ForeignKey("components.id", ondelete="CASCADE"), unique=True
    )
    file_id: Mapped[int] = mapped_column(
        ForeignKey("release_files.id", ondelete="CASCADE"), unique=True
    )
    key_id: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by: Mapped[str | None] = mapped_column(String(128))
