"""Migrations are the only way the schema is made, so they must agree with the ORM models,
form one linear chain, and be reversible on PostgreSQL (and SQLite) one step at a time."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from app.migrate import alembic_config, current_revision, head_revision, migrations_dir
from app.models import Base
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import VENV_BIN


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def model_tables() -> set[str]:
    return set(Base.metadata.tables)


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    """What `alembic revision --autogenerate` would write is empty (on the test backend)."""
    with fresh_database(tmp_path, label="cmp") as url:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                ctx = MigrationContext.configure(
                    conn, opts={"compare_type": True, "compare_server_default": True}
                )
                assert compare_metadata(ctx, Base.metadata) == []
        finally:
            engine.dispose()


def test_the_chain_is_linear_and_reversible_in_code() -> None:
    script = scripts()
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}"
    assert len(script.get_bases()) == 1
    for rev in script.walk_revisions():
        assert not rev.is_merge_point, f"{rev.revision} merges branches; keep the chain linear"
        source = Path(rev.path).read_text("utf-8")
        body = source.split("def downgrade()", 1)[1]
        assert re.search(r"op\.\w+\(", body), f"{rev.revision} has an empty downgrade()"


def test_migration_files_follow_the_naming_template() -> None:
    names = sorted(p.name for p in (migrations_dir() / "versions").glob("*.py"))
    names.remove("__init__.py")
    assert names
    for name in names:
        assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_\d{4}-[a-z0-9_]+\.py", name), name


@pytest.mark.own_database
@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_upgrade_downgrade_upgrade(tmp_path: Path, kind: str) -> None:
    """head → base → head leaves the same schema, and base really is empty."""
    with fresh_database(tmp_path, kind=kind, label="updown") as url:
        engine = create_engine(url)
        cfg = alembic_config(url)
        try:
            assert tables(engine) == model_tables() | {"alembic_version"}
            command.downgrade(cfg, "base")
            assert tables(engine) <= {"alembic_version"}
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0
            command.upgrade(cfg, "head")
            assert tables(engine) == model_tables() | {"alembic_version"}
            with engine.connect() as conn:
                ctx = MigrationContext.configure(conn, opts={"compare_type": True})
                assert ctx.get_current_revision() == scripts().get_current_head()
                assert compare_metadata(ctx, Base.metadata) == []
        finally:
            engine.dispose()


@pytest.mark.own_database
def test_every_step_goes_down_and_up_again_on_postgresql(tmp_path: Path) -> None:
    """The stairway: for each revision, upgrade to it, step back one, upgrade again. Catches
    a downgrade that forgets something a later upgrade then trips over."""
    revisions = [r.revision for r in scripts().walk_revisions()][::-1]  # base first
    with fresh_database(tmp_path, kind="postgresql", label="stairs") as url:
        cfg = alembic_config(url)
        command.downgrade(cfg, "base")
        for rev in revisions:
            command.upgrade(cfg, rev)
            command.downgrade(cfg, "-1")
            command.upgrade(cfg, rev)
        engine = create_engine(url)
        try:
            assert tables(engine) == model_tables() | {"alembic_version"}
        finally:
            engine.dispose()


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    with fresh_database(tmp_path, label="twice") as url:
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            assert [r[0] for r in rows] == [scripts().get_current_head()]
        finally:
            engine.dispose()


def test_migrate_check_tells_whether_the_schema_is_current(tmp_path: Path) -> None:
    """`weightgate migrate --check` (the Kubernetes init container) fails until migrated."""
    url = f"sqlite:///{tmp_path / 'check.db'}"
    env = {**os.environ, "WEIGHTGATE_DATABASE_URL": url, "WEIGHTGATE_DATA_DIR": str(tmp_path)}
    cmd = [str(VENV_BIN / "weightgate"), "migrate", "--check"]
    before = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert before.returncode == 1
    head = head_revision()
    assert f"database is at an empty schema, code expects {head}" in before.stderr
    assert current_revision(url) is None
    command.upgrade(alembic_config(url), "head")
    after = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == f"database is at head ({head})"
    assert current_revision(url) == head
