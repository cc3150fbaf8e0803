"""Filesystem driver: objects under ``<root>/sha256/<aa>/<hex>``, staged in ``<root>/staging``."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from app.storage.base import (
    SHA256_RE,
    HashingCounter,
    HashMismatch,
    ListedObject,
    StaleUpload,
    StorageError,
    StoredBlob,
)


class FilesystemWriter:
    def __init__(self, store: FilesystemStore, expected: str | None, max_bytes: int | None):
        self._store = store
        self._expected = expected
        self._hash = HashingCounter(max_bytes)
        fd, name = tempfile.mkstemp(dir=store.staging, prefix="upload-")
        self._tmp = Path(name)
        self._fh = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes) -> None:
        try:
            self._hash.update(data)
        except BaseException:
            self.abort()
            raise
        self._fh.write(data)

    def commit(self) -> StoredBlob:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        digest = self._hash.hexdigest()
        if self._expected is not None and digest != self._expected:
            self.abort()
            raise HashMismatch(self._expected, digest)
        final = self._store.path_for(digest)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Same content, same name: replacing an existing object is harmless and atomic.
        os.replace(self._tmp, final)
        self._done = True
        return StoredBlob(digest, self._hash.size)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


class FilesystemStore:
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / "staging"
        # Only this user reads the objects (weights under embargo): directories 0700, and
        # files 0600 as mkstemp makes them.
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.staging.mkdir(exist_ok=True, mode=0o700)

    def path_for(self, sha256: str) -> Path:
        if not SHA256_RE.fullmatch(sha256):
            raise ValueError("object keys are SHA-256 hex digests")
        return self.root / "sha256" / sha256[:2] / sha256

    def writer(
        self, *, expected_sha256: str | None = None, max_bytes: int | None = None
    ) -> FilesystemWriter:
        return FilesystemWriter(self, expected_sha256, max_bytes)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def iter_range(
        self, sha256: str, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
    ) -> Iterator[bytes]:
        try:
            fh = self.path_for(sha256).open("rb")
        except FileNotFoundError as e:
            raise StorageError("object missing from store") from e
        with fh:
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                n = chunk_size if remaining is None else min(chunk_size, remaining)
                data = fh.read(n)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def modified(self, sha256: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(self.path_for(sha256).stat().st_mtime, UTC)
        except FileNotFoundError:
            return None

    def listing(self) -> Iterator[ListedObject]:
        # <root>/sha256/<first two hex digits>/<sha256>; anything else is not an object.
        for fan in sorted((self.root / "sha256").glob("[0-9a-f][0-9a-f]")):
            for entry in os.scandir(fan):
                if not (SHA256_RE.fullmatch(entry.name) and entry.name[:2] == fan.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted while listing
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield ListedObject(
                        entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
                    )

    def stale_uploads(self, written_before: datetime) -> list[StaleUpload]:
        # An upload in progress writes to its file every few MiB, which keeps it fresh.
        found = []
        for entry in os.scandir(self.staging):
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # the upload finished while listing
                continue
            written = datetime.fromtimestamp(st.st_mtime, UTC)
            if stat.S_ISREG(st.st_mode) and written < written_before:
                found.append(StaleUpload(entry.name, st.st_size, written))
        return sorted(found, key=lambda u: u.name)

    def discard_upload(self, upload: StaleUpload) -> None:
        (self.staging / Path(upload.name).name).unlink(missing_ok=True)

    def presign_get(self, sha256: str, *, expires_in: int, filename: str) -> str | None:
        return None

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError("object directory is not writable")
