"""Both object store drivers against the same expectations: the filesystem store in a temp
directory and the S3 store against moto's server over real HTTP.

"Nothing left behind" is proved by listing what the store holds (every file under the root,
every key and every unfinished multipart upload in the bucket), not by asking the driver.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.storage import HashMismatch, ObjectStore, StorageError, StoredBlob, TooLarge
from app.storage.disposition import content_disposition
from app.storage.filesystem import FilesystemStore
from app.storage.s3 import S3Store, part_size
from tests.storage.inventory import address, contents, pending_multipart

pytestmark = pytest.mark.no_database

BOTH = pytest.mark.parametrize("store", ["filesystem", "s3"], indirect=True)
S3_ONLY = pytest.mark.parametrize("store", ["s3"], indirect=True)
MiB = 1024 * 1024


def patterned(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-per-MiB bytes (so a misplaced chunk changes the hash)."""
    block = hashlib.sha256(str(seed).encode()).digest()
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(block + counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:size])


def write(store: ObjectStore, data: bytes, *, chunk: int = 64 * 1024, **kw: Any) -> StoredBlob:
    w = store.writer(**kw)
    for i in range(0, len(data), chunk):
        w.write(data[i : i + chunk])
    return w.commit()


def read_all(store: ObjectStore, sha: str, **kw: Any) -> bytes:
    return b"".join(store.iter_range(sha, **kw))


@pytest.fixture
def s3_calls(store: ObjectStore) -> list[str]:
    """Names of the S3 API operations the store sends, recorded by botocore's event hooks."""
    calls: list[str] = []
    if isinstance(store, S3Store):

        def record(model: Any, **_: Any) -> None:
            calls.append(model.name)

        store.client.meta.events.register("before-call.s3", record)
    return calls


@BOTH
def test_streamed_write_is_stored_at_its_content_address(store: ObjectStore) -> None:
    data = patterned(300_000)
    blob = write(store, data, chunk=7_919)  # odd chunk size: boundaries never line up
    sha = hashlib.sha256(data).hexdigest()
    assert blob == StoredBlob(sha, len(data))
    assert contents(store) == [address(store, sha)]
    assert store.exists(sha)
    assert store.size(sha) == len(data)
    assert read_all(store, sha) == data


@BOTH
def test_empty_object(store: ObjectStore) -> None:
    blob = store.writer().commit()
    assert blob == StoredBlob(hashlib.sha256(b"").hexdigest(), 0)
    assert store.size(blob.sha256) == 0
    assert read_all(store, blob.sha256) == b""


@BOTH
def test_identical_content_is_stored_once(store: ObjectStore) -> None:
    data = b"same bytes" * 1000
    first = write(store, data)
    second = write(store, data, chunk=333)
    other = write(store, b"other bytes")
    assert first == second
    assert contents(store) == sorted([address(store, first.sha256), address(store, other.sha256)])


@BOTH
def test_declared_hash_that_matches_is_accepted(store: ObjectStore) -> None:
    data = patterned(10_000)
    sha = hashlib.sha256(data).hexdigest()
    assert write(store, data, expected_sha256=sha).sha256 == sha


@BOTH
@pytest.mark.parametrize("size", [10_000, 11 * MiB], ids=["small", "multipart"])
def test_hash_mismatch_leaves_nothing_behind(store: ObjectStore, size: int) -> None:
    data = patterned(size)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(HashMismatch) as err:
        write(store, data, chunk=MiB, expected_sha256=wrong)
    assert err.value.expected == wrong
    assert err.value.actual == hashlib.sha256(data).hexdigest()
    assert contents(store) == []
    assert pending_multipart(store) == []
    assert not store.exists(err.value.actual)


@BOTH
@pytest.mark.parametrize("size", [10_000, 11 * MiB], ids=["small", "multipart"])
def test_size_limit_aborts_and_leaves_nothing_behind(store: ObjectStore, size: int) -> None:
    w = store.writer(max_bytes=size - 1)

    def send_all() -> None:
        for i in range(0, size, MiB):
            w.write(patterned(min(MiB, size - i), seed=i))

    with pytest.raises(TooLarge) as err:
        send_all()
    assert err.value.limit == size - 1
    w.abort()  # the caller's cleanup path must be harmless after the writer's own
    assert contents(store) == []
    assert pending_multipart(store) == []


@BOTH
def test_abort_midway_leaves_nothing_behind(store: ObjectStore) -> None:
    w = store.writer()
    for i in range(8):
        w.write(patterned(MiB, seed=i))
    w.abort()
    w.abort()
    assert contents(store) == []
    assert pending_multipart(store) == []


@S3_ONLY
def test_s3_uses_multipart_above_the_threshold(store: ObjectStore, s3_calls: list[str]) -> None:
    assert isinstance(store, S3Store)
    data = patterned(12 * MiB + 123)  # threshold and part size are 5 MiB in tests
    blob = write(store, data, chunk=MiB)
    assert s3_calls.count("CreateMultipartUpload") == 1, s3_calls
    assert s3_calls.count("UploadPart") == 3  # 5 + 5 + 2 MiB
    assert "CompleteMultipartUpload" in s3_calls
    assert "PutObject" not in s3_calls
    # Below 5 GiB the staged object reaches its address with one server-side copy.
    assert s3_calls.count("CopyObject") == 1
    assert "UploadPartCopy" not in s3_calls
    # The staging key is gone; only the content address remains.
    assert contents(store) == [address(store, blob.sha256)]
    assert pending_multipart(store) == []
    assert read_all(store, blob.sha256) == data


@S3_ONLY
def test_s3_small_objects_are_one_put(store: ObjectStore, s3_calls: list[str]) -> None:
    blob = write(store, patterned(MiB))
    assert "PutObject" in s3_calls
    assert "CreateMultipartUpload" not in s3_calls
    assert contents(store) == [address(store, blob.sha256)]


@S3_ONLY
def test_s3_multipart_dedupe_skips_the_copy(store: ObjectStore, s3_calls: list[str]) -> None:
    data = patterned(11 * MiB)
    first = write(store, data, chunk=MiB)
    s3_calls.clear()
    second = write(store, data, chunk=MiB)
    assert first == second
    assert "CopyObject" not in s3_calls
    assert "UploadPartCopy" not in s3_calls
    assert contents(store) == [address(store, first.sha256)]


@BOTH
def test_byte_ranges_are_inclusive_like_http(store: ObjectStore) -> None:
    data = patterned(2 * MiB + 17)
    sha = write(store, data, chunk=MiB).sha256
    assert read_all(store, sha, start=0, end=0) == data[:1]
    assert read_all(store, sha, start=10, end=19) == data[10:20]
    assert read_all(store, sha, start=MiB - 3, end=MiB + 3) == data[MiB - 3 : MiB + 4]
    assert read_all(store, sha, start=len(data) - 1) == data[-1:]
    assert read_all(store, sha, start=5) == data[5:]
    # Small chunks: many pieces, same bytes, none larger than asked.
    pieces = list(store.iter_range(sha, start=100, end=100_099, chunk_size=4096))
    assert b"".join(pieces) == data[100:100_100]
    assert max(len(p) for p in pieces) <= 4096


@BOTH
def test_reading_a_missing_object_is_a_storage_error(store: ObjectStore) -> None:
    with pytest.raises(StorageError):
        read_all(store, "0" * 64)
    assert store.size("0" * 64) is None
    assert not store.exists("0" * 64)


@BOTH
def test_delete_removes_the_object_and_is_idempotent(store: ObjectStore) -> None:
    keep = write(store, b"keep")
    gone = write(store, b"gone")
    store.delete(gone.sha256)
    store.delete(gone.sha256)
    assert not store.exists(gone.sha256)
    assert contents(store) == [address(store, keep.sha256)]


@BOTH
def test_keys_must_be_sha256_digests(store: ObjectStore) -> None:
    for bad in ("../../etc/passwd", "A" * 64, "abc", "g" * 64):
        with pytest.raises(ValueError, match="SHA-256"):
            store.delete(bad)


@BOTH
def test_check_passes_on_a_healthy_store(store: ObjectStore) -> None:
    store.check()


def test_filesystem_store_cannot_presign(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    sha = write(store, b"x").sha256
    assert store.presign_get(sha, expires_in=60, filename="x.bin") is None


@S3_ONLY
def test_s3_presigned_url_serves_the_bytes_with_the_filename(store: ObjectStore) -> None:
    data = patterned(1000)
    sha = write(store, data).sha256
    url = store.presign_get(sha, expires_in=120, filename='model "1".safetensors')
    assert url is not None
    assert "X-Amz-Expires=120" in url
    resp = httpx.get(url)
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["content-disposition"] == content_disposition('model "1".safetensors')


def test_s3_check_fails_for_a_missing_bucket(s3_endpoint: str) -> None:
    store = S3Store(
        bucket="no-such-bucket-here", endpoint_url=s3_endpoint, region="us-east-1", path_style=True
    )
    with pytest.raises(StorageError, match="unreachable"):
        store.check()


def test_filesystem_check_fails_when_the_directory_is_gone(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "objects")
    store.staging.rmdir()
    store.root.rmdir()
    with pytest.raises(StorageError, match="not writable"):
        store.check()


def test_open_store_understands_the_storage_urls(tmp_path: Path, s3_endpoint: str) -> None:
    from app.settings import Settings
    from app.storage import open_store

    def settings(**kw: Any) -> Settings:
        return Settings(data_dir=tmp_path / "var", _env_file=None, **kw)

    default = open_store(settings())
    assert isinstance(default, FilesystemStore)
    assert default.root == (tmp_path / "var" / "objects").resolve()
    as_uri = open_store(settings(storage_url=(tmp_path / "o1").as_uri()))
    assert isinstance(as_uri, FilesystemStore)
    assert as_uri.root == tmp_path / "o1"
    bare = open_store(settings(storage_url=str(tmp_path / "o2")))
    assert isinstance(bare, FilesystemStore)
    assert bare.root == tmp_path / "o2"
    s3 = open_store(
        settings(
            storage_url="s3://weights/prod/objects/",
            s3_endpoint_url=s3_endpoint,
            s3_region="eu-west-1",
            s3_path_style=True,
        )
    )
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix) == ("weights", "prod/objects")
    with pytest.raises(ValueError, match="unsupported storage URL scheme 'ftp'"):
        open_store(settings(storage_url="ftp://host/x"))
    with pytest.raises(ValueError, match="needs a bucket"):
        open_store(settings(storage_url="s3:///prefix"))


@pytest.mark.parametrize("size", [10, 6 * MiB], ids=["small", "multipart"])
def test_s3_write_failure_is_a_storage_error(s3_endpoint: str, size: int) -> None:
    store = S3Store(
        bucket="missing-bucket",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        path_style=True,
        multipart_threshold=5 * MiB,
        multipart_chunk=5 * MiB,
    )
    with pytest.raises(StorageError, match="write failed"):
        write(store, patterned(size), chunk=MiB)


def test_part_size_grows_so_the_largest_upload_fits_in_10000_parts() -> None:
    assert part_size(16 * MiB, None) == 16 * MiB
    assert part_size(16 * MiB, 16 * MiB * 10_000) == 16 * MiB
    assert part_size(16 * MiB, 200 * 1024**3) == 21 * MiB  # the default upload limit
    assert part_size(1, None) == 5 * MiB  # S3's minimum


@S3_ONLY
def test_s3_writer_uses_the_raised_part_size(store: ObjectStore, s3_calls: list[str]) -> None:
    assert isinstance(store, S3Store)  # 5 MiB parts configured
    data = patterned(17 * MiB)
    blob = write(store, data, chunk=MiB, max_bytes=15 * MiB * 10_000)  # needs 15 MiB parts
    assert s3_calls.count("UploadPart") == 2  # 15 + 2 MiB, not 5 + 5 + 5 + 2
    assert read_all(store, blob.sha256) == data
