"""Authenticating partner access tokens presented as bearer credentials on API routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.access.principals import Principal
from app.errors import Unauthorized
from app.settings import Settings


def authenticate_partner_token(
    session: Session, value: str, *, now: datetime, settings: Settings, keys: Any
) -> Principal:
    raise Unauthorized(
        "bearer credential is not a valid API key or partner access token",
        code="invalid_credentials",
    )
