"""Build the configured store from ``WEIGHTGATE_STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from app.settings import Settings
from app.storage.base import ObjectStore
from app.storage.filesystem import FilesystemStore


def open_store(settings: Settings) -> ObjectStore:
    url = settings.effective_storage_url
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from app.storage.s3 import S3Store

        return S3Store(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            path_style=settings.s3_path_style,
            multipart_threshold=settings.s3_multipart_threshold,
            multipart_chunk=settings.s3_multipart_chunk,
        )
    if parsed.scheme == "file":
        return FilesystemStore(Path(unquote(parsed.path)))
    if parsed.scheme == "":
        return FilesystemStore(Path(url).resolve())
    raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r} (use file:// or s3://)")
