"""Replicas that start together all run ``weightgate migrate`` on the same empty database:
the transaction-scoped advisory lock in migrations/env.py makes them take turns."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fixtures.databases import PG_ADMIN_URL
from tests.fixtures.servers import VENV_BIN

pytestmark = pytest.mark.own_database


def test_four_migrators_at_once_on_an_empty_postgresql_database(tmp_path: Path) -> None:
    name = f"wg_migrace_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        env = {
            **os.environ,
            "WEIGHTGATE_DATABASE_URL": url,
            "WEIGHTGATE_DATA_DIR": str(tmp_path / "var"),
        }
        procs = [
            subprocess.Popen(
                [str(VENV_BIN / "weightgate"), "migrate"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
        engine = create_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            heads = conn.scalar(text("SELECT count(*) FROM audit_head"))
        engine.dispose()
        check = subprocess.run(
            [str(VENV_BIN / "weightgate"), "migrate", "--check"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert len(versions) == 1
        assert heads == 1  # the data migration ran once, not four times
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
