"""What an object store really holds, read past the driver (directory walk, bucket listing).

Tests use it to prove that a failed upload left nothing behind.
"""

from __future__ import annotations

from app.storage import ObjectStore
from app.storage.filesystem import FilesystemStore
from app.storage.s3 import S3Store


def contents(store: ObjectStore) -> list[str]:
    """Every object the store holds, staging included, as driver-relative names."""
    if isinstance(store, FilesystemStore):
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    assert isinstance(store, S3Store)
    keys: list[str] = []
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def pending_multipart(store: ObjectStore) -> list[str]:
    """Keys of multipart uploads started and neither completed nor aborted (S3 only)."""
    if not isinstance(store, S3Store):
        return []
    resp = store.client.list_multipart_uploads(Bucket=store.bucket)
    return [u["Key"] for u in resp.get("Uploads", [])]


def address(store: ObjectStore, sha: str) -> str:
    """Where the content-addressing scheme says the object must live."""
    if isinstance(store, FilesystemStore):
        return f"sha256/{sha[:2]}/{sha}"
    assert isinstance(store, S3Store)
    return f"{store.prefix}/sha256/{sha}"
