"""Where the client finds its server URL and API key.

``weightgate login`` stores both in ``<config dir>/weightgate/config.json`` (mode 0600);
``WEIGHTGATE_URL`` and ``WEIGHTGATE_TOKEN`` override the file. The config dir is
``$XDG_CONFIG_HOME`` or ``~/.config``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "weightgate" / "config.json"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str | None


def load_config() -> ClientConfig:
    stored: dict[str, str] = {}
    path = config_path()
    if path.is_file():
        try:
            stored = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            stored = {}
    url = os.environ.get("WEIGHTGATE_URL") or stored.get("url") or DEFAULT_URL
    token = os.environ.get("WEIGHTGATE_TOKEN") or stored.get("token") or None
    return ClientConfig(url=url.rstrip("/"), token=token)


def save_config(url: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Create with 0600 from the start: the key must never be readable by others, not even
    # for the instant between write and chmod.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"url": url.rstrip("/"), "token": token}, fh)
    os.chmod(path, 0o600)
    return path
