"""Replicas that start together all run ``weightgate migrate`` on the same empty database:
the transaction-scoped advisory lock in migrations/env.py makes them take turns."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.databases import empty_postgresql_database
from tests.fixtures.servers import VENV_BIN

pytestmark = pytest.mark.own_database


def test_four_migrators_at_once_on_an_empty_postgresql_database(tmp_path: Path) -> None:
    with empty_postgresql_database("migrace") as url:
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
