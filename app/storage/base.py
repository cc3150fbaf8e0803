"""The object store interface.

Objects are addressed only by their SHA-256 (``<prefix>/sha256/<hex>``); no user-supplied
path ever becomes a storage key. Writes are streamed through an :class:`ObjectWriter` that
hashes while it writes into a staging location and only moves the bytes under their content
address once the hash is known (and matches what the uploader declared), so a failed or
mismatched upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MAX_SHA256_HEX = 64
# \A…\Z, not ^…$: "$" also matches before a trailing newline.
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


class StorageError(Exception):
    """The store could not do what was asked (unreachable, permission, corrupt)."""


class HashMismatch(StorageError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"declared sha256 {expected} but received bytes hash to {actual}")
        self.expected = expected
        self.actual = actual


class TooLarge(StorageError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"object exceeds the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


@dataclass(frozen=True)
class ListedObject:
    """An object found in the store by :meth:`ObjectStore.listing`."""

    sha256: str
    size: int
    modified: datetime  # when it was last written (aware, UTC)


@dataclass(frozen=True)
class StaleUpload:
    """Staging data of an upload nobody has written to for a while (its process died)."""

    name: str  # the staging file or key
    size: int | None  # None when the store cannot tell cheaply
    last_written: datetime
    upload_id: str | None = None  # S3: an incomplete multipart upload


def object_key(prefix: str, sha256: str) -> str:
    if not SHA256_RE.fullmatch(sha256):
        raise ValueError("object keys are SHA-256 hex digests")
    return f"{prefix}/sha256/{sha256}" if prefix else f"sha256/{sha256}"


class ObjectWriter(Protocol):
    """A streaming write. ``write`` any number of times, then ``commit`` or ``abort``."""

    def write(self, data: bytes) -> None: ...

    def commit(self) -> StoredBlob:
        """Finish; verify the declared hash; place the object at its content address.

        Raises :class:`HashMismatch` (after cleaning up) when the declared hash differs.
        """
        ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    name: str  # "filesystem" | "s3"

    def writer(
        self, *, expected_sha256: str | None = None, max_bytes: int | None = None
    ) -> ObjectWriter: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int | None: ...

    def iter_range(
        self, sha256: str, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
    ) -> Iterator[bytes]:
        """Yield bytes ``[start, end]`` (inclusive end, like HTTP ranges; ``None`` = to EOF)."""
        ...

    def delete(self, sha256: str) -> None: ...

    def modified(self, sha256: str) -> datetime | None:
        """When the object was last written; ``None`` if it is not there."""
        ...

    def listing(self) -> Iterator[ListedObject]:
        """Every object at a content address (not uploads in progress), in no set order."""
        ...

    def stale_uploads(self, written_before: datetime) -> list[StaleUpload]:
        """Uploads' staging data last written before ``written_before``."""
        ...

    def discard_upload(self, upload: StaleUpload) -> None: ...

    def presign_get(self, sha256: str, *, expires_in: int, filename: str) -> str | None:
        """A URL the client can fetch directly, or ``None`` if this store cannot presign."""
        ...

    def check(self) -> None:
        """Raise :class:`StorageError` if the store is unreachable (readiness probe)."""
        ...


class HashingCounter:
    """SHA-256 and size of a stream, with an optional size limit."""

    def __init__(self, max_bytes: int | None) -> None:
        self._h = hashlib.sha256()
        self.size = 0
        self._max = max_bytes

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            raise TooLarge(self._max)
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()
