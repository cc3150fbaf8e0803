"""The log of committed changes that per-process caches must not outlive (app/freshness.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class CacheInvalidation(Base):
    """A committed change to something a replica may hold in a cache: API keys, users,
    partners and their agreements, grants, and the catalogue (models, releases, components
    and their stages, files, signatures).

    Written only by database triggers (migration ``cache_invalidations``), so every writer
    invalidates alike: the API on any replica, the CLI, the scheduler, an operator's SQL.
    Each process polls the table (app/freshness.py) and prunes rows older than an hour."""

    __tablename__ = "cache_invalidations"

    # BIGINT on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(40))  # the table written
    at: Mapped[datetime]
