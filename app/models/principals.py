"""Users, their API keys, partner organisations and the models partners' agreements cover."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))  # "admin" | "researcher"
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    # The partner organisation this person works for, if any: they see its agreement and
    # activity and rotate its secret (/v1/me/partner). Their own clearance is unchanged.
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("partners.id", ondelete="SET NULL"), index=True
    )


class ApiKey(Base):
    """An API key; only its SHA-256 is stored (keys are 256-bit random, so a fast hash is
    enough: there is nothing to brute-force). ``prefix`` identifies it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings: "wg_AbCdEfGh"
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expiry_reminded_at: Mapped[datetime | None]


class Partner(Base):
    """An organisation under agreement, authenticated with OAuth2 client credentials."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    secret_expires_at: Mapped[datetime | None]
    # The secret a planned rotation replaced, still accepted until the time given then.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None]
    secret_rotated_at: Mapped[datetime | None]
    secret_expiry_reminded_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class PartnerAgreement(Base):
    __tablename__ = "partner_agreements"
    __table_args__ = (UniqueConstraint("partner_id", "model_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]


__all__ = ["ApiKey", "Partner", "PartnerAgreement", "User"]
