"""What the database's schema is made of, beyond Alembic's single current revision."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class SchemaLineage(Base):
    """Every migration revision the current schema contains (the current one and all its
    ancestors), rewritten by migrations/env.py whenever a migration runs.

    Code older than the database cannot know the newer revision ids, so Alembic's version
    table alone cannot tell it whether the schema is *newer* than what it needs or merely
    *different*; this table can: the code's own head is in it exactly when the schema
    includes everything that code needs (app/migrate.py, ``weightgate migrate --check``).
    """

    __tablename__ = "schema_lineage"

    revision: Mapped[str] = mapped_column(String(64), primary_key=True)
