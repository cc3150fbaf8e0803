"""Running Alembic migrations from the application (``weightgate migrate``, ``serve``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.settings import get_settings


def migrations_dir() -> Path:
    """The ``migrations`` package, installed beside ``app`` (wheel) or in the source tree."""
    spec = importlib.util.find_spec("migrations")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    return Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["url"] = url or get_settings().effective_database_url
    return cfg


def upgrade(revision: str = "head", url: str | None = None) -> None:
    get_settings().data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The revision the code expects (the single head of the migration chain)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    engine = make_engine(url or get_settings().effective_database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
