"""Running Alembic migrations from the application (``weightgate migrate``, ``serve``), and
telling whether a database's schema is one this code can run on.

During a rolling update, and after a rollback, code runs against a schema newer than its
own head (migrations only add what older code ignores: docs/deployment.md). That code does
not know the newer revision ids; ``schema_lineage`` (app/models/schema.py) lists every
revision the schema contains, so it can tell "newer, and includes mine" from "different".
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.models import SchemaLineage
from app.settings import get_settings

log = logging.getLogger(__name__)


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
    """Migrate to ``revision``. Towards ``head`` on a database that newer code has already
    taken past this code's head, there is nothing to do (Alembic itself would fail on the
    revision it does not know): say so and return."""
    get_settings().data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if revision == "head":
        state = schema_state(url)
        if state.newer:
            log.info("migrate.newer_schema", extra={"current": state.current, "head": state.head})
            return
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The revision the code expects (the single head of the migration chain)."""
    return _scripts().get_current_head()


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    engine = make_engine(url or get_settings().effective_database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


@dataclass(frozen=True)
class SchemaState:
    """Where the database is against this code's head revision."""

    head: str | None
    current: str | None
    lineage: frozenset[str]

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def newer(self) -> bool:
        """At a revision this code does not know, whose lineage includes this code's head."""
        return not self.at_head and self.head in self.lineage and not _known(self.current)

    @property
    def compatible(self) -> bool:
        return self.at_head or self.newer

    def describe(self) -> str:
        if self.at_head:
            return f"database is at head ({self.head})"
        if self.newer:
            return (
                f"database is at {self.current}, newer than and including this code's {self.head}"
            )
        return f"database is at {self.current or 'an empty schema'}, code expects {self.head}"


def _known(revision: str | None) -> bool:
    if revision is None:
        return False
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def schema_state(url: str | None = None) -> SchemaState:
    engine = make_engine(url or get_settings().effective_database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            lineage: set[str] = set()
            if inspect(conn).has_table(SchemaLineage.__tablename__):
                lineage = set(conn.scalars(select(SchemaLineage.revision)))
    finally:
        engine.dispose()
    return SchemaState(head=head_revision(), current=current, lineage=frozenset(lineage))


def wait_until_compatible(
    *,
    timeout: float,
    interval: float = 2.0,
    url: str | None = None,
    report: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> SchemaState | None:
    """Poll until the schema is compatible or ``timeout`` seconds have passed (the
    Kubernetes init container: it waits for the migration Job instead of crash-looping).
    ``report`` hears each new reason to wait; an unreachable database is one. Returns the
    last state read (``None`` if the database never answered)."""
    deadline = monotonic() + timeout
    state: SchemaState | None = None
    said = ""
    while True:
        try:
            state = schema_state(url)
            if state.compatible:
                return state
            reason = state.describe()
        except SQLAlchemyError as e:
            reason = f"database unreachable ({type(e).__name__})"
        if reason != said:
            report(reason)
            said = reason
        if monotonic() + interval > deadline:
            return state
        sleep(interval)
