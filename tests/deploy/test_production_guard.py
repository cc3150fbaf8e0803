"""Production inside a container refuses SQLite and a filesystem store unless the operator
says a volume holds them: otherwise the data would vanish with the container. (The image
itself refusing is checked in tests/deploy/test_compose_stack.py.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.settings import Settings, UnsafeConfiguration, running_in_container
from tests.fixtures.servers import VENV_BIN

PG = "postgresql+psycopg://wg:pw@db.internal:5432/wg"


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("database_url", "storage_url", "refused"),
    [
        ("", "", ["SQLite", "stored in a directory"]),
        (PG, "", ["stored in a directory"]),
        ("", "s3://bucket/weights", ["SQLite"]),
        (PG, "file:///srv/objects", ["stored in a directory"]),
    ],
)
def test_production_in_a_container_refuses_local_state(
    tmp_path: Path, database_url: str, storage_url: str, refused: list[str]
) -> None:
    s = settings(
        tmp_path, environment="production", database_url=database_url, storage_url=storage_url
    )
    with pytest.raises(UnsafeConfiguration) as caught:
        s.check_production(in_container=True)
    message = str(caught.value)
    for what in refused:
        assert what in message
    assert "WEIGHTGATE_ALLOW_LOCAL_STATE_IN_CONTAINER=true" in message
    assert str(tmp_path) in message
    # Never the database password.
    assert "pw@" not in message


def test_postgresql_and_s3_in_a_container_start(tmp_path: Path) -> None:
    s = settings(
        tmp_path, environment="production", database_url=PG, storage_url="s3://bucket/weights"
    )
    s.check_production(in_container=True)


@pytest.mark.parametrize(
    ("environment", "in_container", "allowed"),
    [
        ("production", False, False),  # a VM or bare metal: the disk stays
        ("development", True, False),
        ("test", True, False),
        ("production", True, True),  # the operator mounted a volume on the data dir
    ],
)
def test_local_state_is_fine_elsewhere_or_when_allowed(
    tmp_path: Path, environment: str, in_container: bool, allowed: bool
) -> None:
    s = settings(tmp_path, environment=environment, allow_local_state_in_container=allowed)
    s.check_production(in_container=in_container)


def test_a_kubernetes_pod_counts_as_a_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert running_in_container() is True


def test_serve_refuses_before_migrating_or_listening(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WEIGHTGATE_ENVIRONMENT": "production",
        "WEIGHTGATE_DATA_DIR": str(tmp_path / "var"),
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",  # what every pod has
    }
    for key in ("WEIGHTGATE_DATABASE_URL", "WEIGHTGATE_STORAGE_URL"):
        env.pop(key, None)
    result = subprocess.run(
        [str(VENV_BIN / "weightgate"), "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: refusing to start in production inside a container")
    assert not (tmp_path / "var" / "weightgate.db").exists()  # nothing migrated
