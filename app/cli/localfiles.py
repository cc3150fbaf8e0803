"""The download directory on disk: safe local paths, SHA-256 of files, and the record in
``<dir>/.weightgate/download.json`` of which release the files came from and which of them
were verified (so a second run skips them without hashing hundreds of gigabytes again)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from app.cli.errors import CliError

RECORD_DIR = ".weightgate"
RECORD_FILE = "download.json"
HASH_CHUNK = 4 * 1024 * 1024


def local_path(root: Path, rel: str) -> Path:
    """Where file ``rel`` of a release goes under ``root``. The path comes from the server:
    refuse anything that could land outside ``root`` or in our own record directory."""
    # Check the raw segments: PurePosixPath would quietly fold "a//b" and "./a".
    parts = rel.split("/")
    if (
        not rel
        or PurePosixPath(rel).is_absolute()
        or "\\" in rel
        or "\x00" in rel
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] == RECORD_DIR
        or rel.endswith((".part", ".part.json"))
    ):
        raise CliError(f"refusing unsafe file path from the server: {rel!r}", code="unsafe_path")
    target = root.joinpath(*parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise CliError(f"refusing unsafe file path from the server: {rel!r}", code="unsafe_path")
    return target


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class RecordedFile:
    size: int
    sha256: str
    component: str
    # (size, mtime_ns) of the file when its hash was last checked; unchanged → still good.
    verified_mtime_ns: int | None = None


@dataclass
class LocalRecord:
    model: str
    version: str
    revision: str
    server: str
    files: dict[str, RecordedFile] = field(default_factory=dict)

    @staticmethod
    def path(root: Path) -> Path:
        return root / RECORD_DIR / RECORD_FILE

    @classmethod
    def load(cls, root: Path) -> LocalRecord | None:
        try:
            raw: dict[str, Any] = json.loads(cls.path(root).read_text("utf-8"))
            return cls(
                model=raw["model"],
                version=raw["version"],
                revision=raw["revision"],
                server=raw["server"],
                files={p: RecordedFile(**f) for p, f in raw["files"].items()},
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CliError(f"{cls.path(root)} is damaged ({e}); remove it and retry") from e

    def save(self, root: Path) -> None:
        target = self.path(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".download-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=1, sort_keys=True)
        os.replace(tmp, target)

    def mark_verified(self, rel: str, local: Path, *, sha256: str, component: str) -> None:
        st = local.stat()
        self.files[rel] = RecordedFile(
            size=st.st_size, sha256=sha256, component=component, verified_mtime_ns=st.st_mtime_ns
        )


def already_complete(
    record: LocalRecord | None, rel: str, local: Path, *, size: int, sha256: str
) -> bool:
    """Whether ``local`` already holds exactly this file. Trusts an earlier verification
    while the file's size and mtime are unchanged; otherwise hashes it."""
    try:
        st = local.stat()
    except FileNotFoundError:
        return False
    if st.st_size != size:
        return False
    seen = record.files.get(rel) if record else None
    if seen and seen.sha256 == sha256 and seen.verified_mtime_ns == st.st_mtime_ns:
        return True
    return file_sha256(local) == sha256
