"""Alembic environment: the URL comes from weightgate settings (or ``-x url=`` / config).

On PostgreSQL the whole migration runs under a *transaction-scoped* advisory lock, so replicas
that start together never race; the lock ends with the transaction (no session-level lock
that could leak behind a connection pooler). Each step rewrites ``schema_lineage``
(app/models/schema.py) in its own transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection, delete, insert, inspect, text
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.models import Base, SchemaLineage
from app.settings import get_settings

config = context.config
target_metadata = Base.metadata

# Arbitrary constant: the advisory lock id all weightgate migrators agree on.
MIGRATION_LOCK_ID = 0x5767_6174_65  # "Wgate"


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return str(url or get_settings().effective_database_url)


def run_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url(), poolclass=NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        # Autogenerate compares what tests/migrations checks: column types and defaults.
        compare_type=True,
        compare_server_default=True,
        # After each step, inside its transaction (SQLite's DDL is not transactional, so
        # Alembic commits step by step there; a write after the last step would be lost).
        on_version_apply=_record_lineage,
    )
    with context.begin_transaction():
        if context.get_bind().dialect.name == "postgresql":
            context.get_bind().execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
        context.run_migrations()


def _record_lineage(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[str], run_args: Mapping[str, Any]
) -> None:
    """The new current revision and all its ancestors, as this (the newest) code knows
    them. Absent below the migration that creates the table."""
    connection = ctx.connection
    assert connection is not None
    if not inspect(connection).has_table(SchemaLineage.__tablename__):
        return
    script = context.script
    revisions = {rev.revision for head in heads for rev in script.iterate_revisions(head, "base")}
    connection.execute(delete(SchemaLineage))
    if revisions:
        connection.execute(insert(SchemaLineage), [{"revision": r} for r in sorted(revisions)])


if context.is_offline_mode():
    run_offline()
else:
    run_online()
