"""Issued tokens (one row per ``jti``), per-file starts for Range continuations, quota counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class IssuedToken(Base):
    __tablename__ = "issued_tokens"
    __table_args__ = (Index("ix_issued_tokens_subject", "subject", "revoked_at"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # download | partner_access
    kid: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))  # user:<id> | partner:<id>
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    tier: Mapped[str | None] = mapped_column(String(16))
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(200))


class TokenFileStart(Base):
    """A file a token with ``max_uses`` has started: a later Range request on it is a resume
    and takes no use while the bytes resumes hand out (``resumed``) stay within the file's
    size per use taken on it (``uses``)."""

    __tablename__ = "token_file_starts"

    jti: Mapped[str] = mapped_column(
        ForeignKey("issued_tokens.jti", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    started_at: Mapped[datetime]
    uses: Mapped[int] = mapped_column(default=1, server_default="1")
    resumed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class QuotaCounter(Base):
    """A fixed-window counter shared by all replicas (``key`` names principal/address + kind)."""

    __tablename__ = "quota_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
