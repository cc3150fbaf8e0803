"""An old pod keeps starting on a database newer than its code (after a rollback, or a drain
in the middle of a rollout): `migrate --check` passes when the schema *includes* the code's
head, `migrate` is a no-op there, and the init container waits for the migration Job
instead of crash-looping."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, select, text, update

from app.migrate import (
    alembic_config,
    head_revision,
    schema_state,
    upgrade,
    wait_until_compatible,
)
from app.models import SchemaLineage
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import VENV_BIN

NEWER = "0123456789ab"  # a revision only newer code knows


def lineage(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.scalars(select(SchemaLineage.revision)))
    finally:
        engine.dispose()


def as_if_newer_code_migrated(url: str, *, includes_ours: bool = True) -> None:
    """What a migration of the next release leaves: its revision current, the lineage
    rewritten by that release's env.py (ours included, unless the chains diverged)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": NEWER})
            conn.execute(insert(SchemaLineage), [{"revision": NEWER}])
            if not includes_ours:
                conn.execute(
                    update(SchemaLineage)
                    .where(SchemaLineage.revision == head_revision())
                    .values(revision="fedcba987654")
                )
    finally:
        engine.dispose()


def cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEIGHTGATE_DATABASE_URL": url, "WEIGHTGATE_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [str(VENV_BIN / "weightgate"), "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_lineage_is_the_current_revision_and_every_ancestor(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    every = {rev.revision for rev in script.walk_revisions()}
    with fresh_database(tmp_path, label="lineage") as url:
        assert lineage(url) == every
        command.downgrade(alembic_config(url), "-1")
        state = schema_state(url)
        assert state.current not in (None, head_revision())
        assert head_revision() not in state.lineage
        assert not state.compatible  # one step behind: this code must wait
        upgrade(url=url)
        assert lineage(url) == every


def test_a_newer_schema_that_includes_ours_passes_the_check_and_migrate_is_a_no_op(
    tmp_path: Path,
) -> None:
    with fresh_database(tmp_path, label="newer") as url:
        as_if_newer_code_migrated(url)
        state = schema_state(url)
        assert state.newer
        assert state.compatible
        check = cli(url, tmp_path, "--check")
        assert check.returncode == 0, check.stderr
        head = head_revision()
        assert check.stdout.strip() == (
            f"database is at {NEWER}, newer than and including this code's {head}"
        )
        # Alembic alone fails here ("Can't locate revision"); the old Job must not.
        migrated = cli(url, tmp_path)
        assert migrated.returncode == 0, migrated.stderr
        assert schema_state(url).current == NEWER


def test_an_unknown_schema_that_does_not_include_ours_fails_the_check(tmp_path: Path) -> None:
    with fresh_database(tmp_path, label="diverged") as url:
        as_if_newer_code_migrated(url, includes_ours=False)
        state = schema_state(url)
        assert not state.compatible
        check = cli(url, tmp_path, "--check")
        assert check.returncode == 1
        assert f"database is at {NEWER}, code expects {head_revision()}" in check.stderr


def test_the_wait_ends_when_the_migration_job_has_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wait.db'}"
    clock = [0.0]
    heard: list[str] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        if clock[0] >= 6:  # the Job finishes while the init container waits
            upgrade(url=url)

    state = wait_until_compatible(
        timeout=600,
        interval=2,
        url=url,
        report=heard.append,
        sleep=sleep,
        monotonic=lambda: clock[0],
    )
    assert state is not None
    assert state.at_head
    assert clock[0] == 6
    assert heard == [f"database is at an empty schema, code expects {head_revision()}"]


def test_the_wait_gives_up_after_its_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never.db'}"
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    state = wait_until_compatible(
        timeout=10, interval=2, url=url, sleep=sleep, monotonic=lambda: clock[0]
    )
    assert state is not None
    assert not state.compatible
    assert clock[0] == 10


def test_the_init_container_command_waits_then_fails_without_crash_looping_early(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'init.db'}"
    result = cli(url, tmp_path, "--check", "--wait", "2")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"waiting: database is at an empty schema, code expects {head_revision()}"
    assert lines[-1] == f"database is at an empty schema, code expects {head_revision()}"
