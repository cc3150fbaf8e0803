"""S3 driver (AWS S3, MinIO, R2, Ceph) over boto3.

Small uploads are held in memory up to ``multipart_threshold`` and written straight to their
content address once hashed. Larger ones stream as a multipart upload to a staging key; when
the last part is in and the hash is verified, a server-side copy places the object at its
content address and the staging object is deleted. Nothing unverified is ever visible under
``sha256/``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.storage.base import (
    SHA256_RE,
    HashingCounter,
    HashMismatch,
    ListedObject,
    StaleUpload,
    StorageError,
    StoredBlob,
    object_key,
)
from app.storage.disposition import content_disposition

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

COPY_CONFIG = TransferConfig(
    multipart_threshold=5 * 1024**3,
    multipart_chunksize=512 * 1024**2,
    preferred_transfer_client="classic",
)


# S3's limits: at most 10,000 parts, each (but the last) at least 5 MiB.
MAX_PARTS = 10_000
MIN_PART = 5 * 1024 * 1024


def part_size(chunk: int, max_bytes: int | None) -> int:
    """The configured part size, raised (in whole MiB) when the largest object this upload
    may become would not fit in 10,000 parts of it. Parts are buffered in memory, so this
    is also the upload's memory bound: 16 MiB by default, ~21 MiB for a 200 GiB limit."""
    size = max(chunk, MIN_PART)
    if max_bytes is not None and max_bytes > size * MAX_PARTS:
        mib = 1024 * 1024
        per_part = -(-max_bytes // MAX_PARTS)  # ceiling division
        size = -(-per_part // mib) * mib
    return size


log = logging.getLogger(__name__)

# botocore logs the canonical request and the signature of every presigned URL at DEBUG:
# together they are the URL, a bearer credential. Keep that logger quiet even when an
# operator turns everything else up to DEBUG; this module is where presigning happens.
logging.getLogger("botocore.auth").setLevel(logging.INFO)


def _is_missing(err: ClientError) -> bool:
    code = str(err.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3Writer:
    def __init__(self, store: S3Store, expected: str | None, max_bytes: int | None) -> None:
        self._s = store
        self._expected = expected
        self._hash = HashingCounter(max_bytes)
        self._part_size = part_size(store.multipart_chunk, max_bytes)
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._staging_key = f"{store.prefix}/staging/{uuid.uuid4().hex}".lstrip("/")
        self._parts: list[dict[str, Any]] = []
        self._done = False

    def write(self, data: bytes) -> None:
        try:
            self._hash.update(data)
            self._buf += data
            if self._upload_id is None and len(self._buf) > self._s.multipart_threshold:
                resp = self._s.client.create_multipart_upload(
                    Bucket=self._s.bucket, Key=self._staging_key
                )
                self._upload_id = resp["UploadId"]
            if self._upload_id is not None:
                while len(self._buf) >= self._part_size:
                    self._flush_part(bytes(self._buf[: self._part_size]))
                    del self._buf[: self._part_size]
        except (BotoCoreError, ClientError) as e:
            self.abort()
            raise StorageError("object store write failed") from e
        except BaseException:
            self.abort()
            raise

    def _flush_part(self, data: bytes) -> None:
        assert self._upload_id is not None
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageError(
                f"object needs more than {MAX_PARTS} parts of {self._part_size} bytes"
            )
        resp = self._s.client.upload_part(
            Bucket=self._s.bucket,
            Key=self._staging_key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def commit(self) -> StoredBlob:
        digest = self._hash.hexdigest()
        if self._expected is not None and digest != self._expected:
            self.abort()
            raise HashMismatch(self._expected, digest)
        key = object_key(self._s.prefix, digest)
        c = self._s.client
        try:
            if self._upload_id is None:
                c.put_object(
                    Bucket=self._s.bucket,
                    Key=key,
                    Body=bytes(self._buf),
                    ChecksumAlgorithm="SHA256",
                )
            else:
                if self._buf or not self._parts:
                    self._flush_part(bytes(self._buf))
                self._buf.clear()
                c.complete_multipart_upload(
                    Bucket=self._s.bucket,
                    Key=self._staging_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
                )
                self._upload_id = None
                if not self._s.exists(digest):
                    # One server-side CopyObject up to S3's 5 GiB limit, a multipart copy in
                    # big parts above it; the bytes never pass through this process.
                    c.copy(
                        {"Bucket": self._s.bucket, "Key": self._staging_key},
                        self._s.bucket,
                        key,
                        Config=COPY_CONFIG,
                    )
                c.delete_object(Bucket=self._s.bucket, Key=self._staging_key)
        except (BotoCoreError, ClientError) as e:
            self.abort()
            raise StorageError("object store write failed") from e
        self._done = True
        return StoredBlob(digest, self._hash.size)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buf.clear()
        try:
            if self._upload_id is not None:
                self._s.client.abort_multipart_upload(
                    Bucket=self._s.bucket, Key=self._staging_key, UploadId=self._upload_id
                )
            self._s.client.delete_object(Bucket=self._s.bucket, Key=self._staging_key)
        except (BotoCoreError, ClientError):
            # Best effort: a bucket lifecycle rule on staging/ collects what is left.
            log.warning("storage.staging_cleanup_failed", extra={"key": self._staging_key})


class S3Store:
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        multipart_threshold: int = 64 * 1024 * 1024,
        multipart_chunk: int = 16 * 1024 * 1024,
    ) -> None:
        if not bucket:
            raise ValueError("s3:// storage URL needs a bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # S3 needs parts of at least 5 MiB (except the last).
        self.multipart_chunk = max(multipart_chunk, 5 * 1024 * 1024)
        self.multipart_threshold = max(multipart_threshold, 0)
        config = Config(
            s3={"addressing_style": "path" if path_style else "auto"},
            signature_version="s3v4",
            retries={"max_attempts": 5, "mode": "standard"},
        )
        # Credentials come from the standard AWS chain (env, profile, IRSA, instance role).
        self.client: S3Client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def writer(
        self, *, expected_sha256: str | None = None, max_bytes: int | None = None
    ) -> S3Writer:
        return S3Writer(self, expected_sha256, max_bytes)

    def _head(self, sha256: str) -> HeadObjectOutputTypeDef | None:
        """The object's metadata; ``None`` if it is not there."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=object_key(self.prefix, sha256))
        except ClientError as e:
            if _is_missing(e):
                return None
            raise StorageError("object store unreachable") from e
        except BotoCoreError as e:
            raise StorageError("object store unreachable") from e

    def size(self, sha256: str) -> int | None:
        head = self._head(sha256)
        return None if head is None else int(head["ContentLength"])

    def exists(self, sha256: str) -> bool:
        return self.size(sha256) is not None

    def iter_range(
        self, sha256: str, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
    ) -> Iterator[bytes]:
        key = object_key(self.prefix, sha256)
        try:
            if start == 0 and end is None:
                # No Range header for a whole read: S3 answers 416 to "bytes=0-" on an empty
                # object, and empty files (an empty __init__.py, a marker) are legitimate.
                resp = self.client.get_object(Bucket=self.bucket, Key=key)
            else:
                rng = f"bytes={start}-{'' if end is None else end}"
                resp = self.client.get_object(Bucket=self.bucket, Key=key, Range=rng)
        except (BotoCoreError, ClientError) as e:
            raise StorageError("object store read failed") from e
        body = resp["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def delete(self, sha256: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=object_key(self.prefix, sha256))
        except (BotoCoreError, ClientError) as e:
            raise StorageError("object store delete failed") from e

    def modified(self, sha256: str) -> datetime | None:
        head = self._head(sha256)
        return None if head is None else head["LastModified"].astimezone(UTC)

    def listing(self) -> Iterator[ListedObject]:
        under = object_key(self.prefix, "0" * 64)[:-64]  # "<prefix>/sha256/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=under
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(under) :]
                    if SHA256_RE.fullmatch(name):
                        yield ListedObject(name, obj["Size"], obj["LastModified"].astimezone(UTC))
        except (BotoCoreError, ClientError) as e:
            raise StorageError("object store listing failed") from e

    def stale_uploads(self, written_before: datetime) -> list[StaleUpload]:
        """Incomplete multipart uploads whose last part is older than ``written_before``,
        and staging objects a dead process left between completing and copying them."""
        staging = f"{self.prefix}/staging/".lstrip("/")
        c = self.client
        found = []
        try:
            for page in c.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=staging
            ):
                for up in page.get("Uploads", ()):
                    key, upload_id = up["Key"], up["UploadId"]
                    parts = [
                        part
                        for parts_page in c.get_paginator("list_parts").paginate(
                            Bucket=self.bucket, Key=key, UploadId=upload_id
                        )
                        for part in parts_page.get("Parts", ())
                    ]
                    written = max(
                        (p["LastModified"] for p in parts), default=up["Initiated"]
                    ).astimezone(UTC)
                    if written < written_before:
                        size = sum(p["Size"] for p in parts)
                        found.append(StaleUpload(key, size, written, upload_id))
            for listed in c.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=staging
            ):
                for obj in listed.get("Contents", ()):
                    written = obj["LastModified"].astimezone(UTC)
                    if written < written_before:
                        found.append(StaleUpload(obj["Key"], obj["Size"], written))
        except (BotoCoreError, ClientError) as e:
            raise StorageError("object store listing failed") from e
        return sorted(found, key=lambda u: (u.name, u.upload_id or ""))

    def discard_upload(self, upload: StaleUpload) -> None:
        try:
            if upload.upload_id is not None:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload.name, UploadId=upload.upload_id
                )
            else:
                self.client.delete_object(Bucket=self.bucket, Key=upload.name)
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code", "")) == "NoSuchUpload":
                return  # finished or aborted meanwhile
            raise StorageError("object store delete failed") from e
        except BotoCoreError as e:
            raise StorageError("object store delete failed") from e

    def presign_get(self, sha256: str, *, expires_in: int, filename: str) -> str | None:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": object_key(self.prefix, sha256),
                "ResponseContentDisposition": content_disposition(filename),
            },
            ExpiresIn=max(1, int(expires_in)),
        )

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as e:
            raise StorageError("object store unreachable") from e
