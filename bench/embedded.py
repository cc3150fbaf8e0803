"""A weightgate server on the embedded defaults (SQLite + ./var/objects) for benches: an
admin created with the CLI, ``weightgate serve`` started, ready when /healthz answers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.servers import VENV_BIN, free_port, stop, wait_http


@dataclass
class EmbeddedServer:
    url: str
    proc: subprocess.Popen[bytes]
    admin_key: str
    env: dict[str, str]

    def stop(self) -> None:
        stop(self.proc)


def start_embedded(workdir: Path, extra_env: Mapping[str, str] | None = None) -> EmbeddedServer:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "WEIGHTGATE_DATA_DIR": str(workdir / "var"),
        "WEIGHTGATE_ENVIRONMENT": "development",
        "WEIGHTGATE_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    for k in ("WEIGHTGATE_DATABASE_URL", "WEIGHTGATE_STORAGE_URL"):
        env.pop(k, None)  # the embedded defaults: SQLite + ./var/objects
    made = subprocess.run(
        [
            str(VENV_BIN / "weightgate"),
            "admin",
            "create-user",
            "--email=bench@example.org",
            "--role=admin",
        ],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    with (workdir / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(VENV_BIN / "weightgate"), "serve", "--port", str(port), "--no-migrate"],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(url + "/healthz", timeout=60, proc=proc)
    except BaseException:
        stop(proc)
        raise
    return EmbeddedServer(url, proc, key, env)
