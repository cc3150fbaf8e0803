"""Browser sessions of the web console: a row per signed-in browser, so any replica can
check a session and signing out (or disabling the user) ends it everywhere at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class BrowserSession(Base):
    """Only the SHA-256 of the cookie's value is stored (the value is 256 random bits: a
    fast hash is enough), so a copy of the table opens no session."""

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The value every unsafe request of this session must carry (form field or header).
    csrf_token: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))  # "api_key" | "oidc"
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # the absolute lifetime's end
    ended_at: Mapped[datetime | None]
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    client_addr: Mapped[str | None] = mapped_column(String(64))


__all__ = ["BrowserSession"]
