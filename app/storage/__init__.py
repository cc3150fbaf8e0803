"""Content-addressed object storage behind one interface, with filesystem and S3 drivers."""

from app.storage.base import (
    MAX_SHA256_HEX,
    HashMismatch,
    ListedObject,
    ObjectStore,
    ObjectWriter,
    StaleUpload,
    StorageError,
    StoredBlob,
    TooLarge,
)
from app.storage.factory import open_store

__all__ = [
    "MAX_SHA256_HEX",
    "HashMismatch",
    "ListedObject",
    "ObjectStore",
    "ObjectWriter",
    "StaleUpload",
    "StorageError",
    "StoredBlob",
    "TooLarge",
    "open_store",
]
