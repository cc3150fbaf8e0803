"""``weightgate storage gc``: objects no file refers to are removed, nothing else is, and an
upload racing the collector for the same bytes never ends up pointing at missing bytes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.catalogue import collect, uploads
from app.catalogue import repository as repo
from app.clock import FixedClock
from app.db import make_engine, make_sessionmaker
from app.models import ReleaseFile, StoredObject
from app.storage import ObjectStore, StoredBlob
from app.storage.filesystem import FilesystemStore
from app.storage.s3 import S3Store
from tests.factories.access import audit_events
from tests.factories.catalogue import check, publish_release, sha256, signature_files
from tests.fixtures.databases import fresh_database, lock_timeout
from tests.storage.inventory import address, contents, pending_multipart

BOTH = pytest.mark.parametrize("store", ["filesystem", "s3"], indirect=True)
DRAFT = "/v1/models/acme/atlas-7b/releases/v2/files"
DAY = timedelta(hours=24)


def put(store: ObjectStore, data: bytes) -> str:
    """Bytes in the store with no row: what an upload that died before registering leaves."""
    writer = store.writer()
    writer.write(data)
    return writer.commit().sha256


def staging(store: ObjectStore) -> list[str]:
    """Uploads' staging data: temporary files, S3 staging keys and incomplete multiparts."""
    if isinstance(store, FilesystemStore):
        return sorted(p.name for p in store.staging.iterdir())
    return sorted([n for n in contents(store) if "/staging/" in n] + pending_multipart(store))


def objects(store: ObjectStore) -> list[str]:
    return [n for n in contents(store) if "staging" not in n]


def abandon_upload(store: ObjectStore) -> int:
    """What uploads killed mid-stream leave in staging; how many."""
    if isinstance(store, FilesystemStore):
        # The writer's temporary file, as FilesystemWriter names it.
        fd, _ = tempfile.mkstemp(dir=store.staging, prefix="upload-")
        os.write(fd, b"the first half of an upload")
        os.close(fd)
        return 1
    assert isinstance(store, S3Store)
    # An incomplete multipart upload with one part in (past the test store's 5 MiB threshold).
    store.writer().write(os.urandom(6 * 2**20))
    # And a completed staging object the dead process had not yet copied and deleted.
    key = f"{store.prefix}/staging/completed-then-died"
    store.client.put_object(Bucket=store.bucket, Key=key, Body=b"x")
    return 2


def rows(db: Session) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(StoredObject.sha256)))


@BOTH
def test_gc_removes_exactly_the_objects_no_file_refers_to(
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    store: ObjectStore,
    session_factory: sessionmaker[Session],
) -> None:
    shared, new_shard = b"bytes v1 and v2 share", b"the shard as re-uploaded"
    publish_release(client, admin_headers, files={"a.bin": ("weights", shared)})
    signature = signature_files(client, admin_headers)["signatures/weights.sig"]["sha256"]
    publish_release(
        client,
        admin_headers,
        version="v2",
        create=False,
        publish=False,
        files={
            "a.bin": ("weights", shared),
            "shard.bin": ("weights", b"the shard as first uploaded"),
            "gone.bin": ("weights", b"a file deleted from the draft"),
        },
    )
    replaced = client.put(
        f"{DRAFT}/shard.bin",
        params={"component": "weights"},
        content=new_shard,
        headers=admin_headers,
    )
    check(replaced, 200)
    for path in ("gone.bin", "a.bin"):  # v1 still has a.bin's bytes
        assert client.delete(f"{DRAFT}/{path}", headers=admin_headers).status_code == 204
    stray = put(store, b"bytes an upload stored before its process died")
    abandoned = abandon_upload(store)
    assert len(staging(store)) == abandoned
    garbage = {
        sha256(b"the shard as first uploaded"): False,
        sha256(b"a file deleted from the draft"): False,
        stray: True,
    }
    live = {sha256(shared), sha256(new_shard), signature}
    everything = sorted(address(store, s) for s in {*garbage, *live})
    assert objects(store) == everything

    # All of it was written just now: within a day's grace nothing goes. "Now" is when the
    # store says the objects were written (a filesystem's clock is the kernel's, which need
    # not be this process's: make test-future moves only the latter).
    now = max(m for s in {*garbage, *live} if (m := store.modified(s)) is not None)
    fresh = collect.collect(session_factory, store, now=now, min_age=DAY)
    assert (fresh.removed, fresh.kept, fresh.uploads) == ([], 3, [])
    later = now + 2 * DAY
    dry = collect.collect(session_factory, store, now=later, min_age=DAY, dry_run=True)
    assert {c.sha256: c.stray for c in dry.removed} == garbage
    assert len(dry.uploads) == abandoned
    assert objects(store) == everything
    assert len(staging(store)) == abandoned

    report = collect.collect(session_factory, store, now=later, min_age=DAY)
    assert {c.sha256: c.stray for c in report.removed} == garbage
    assert report.kept == 0
    assert report.bytes == sum(c.size for c in report.removed) > 0
    assert len(report.uploads) == abandoned
    assert contents(store) == sorted(address(store, s) for s in live)
    assert staging(store) == []
    assert rows(db) == live
    # The files left are whole.
    assert b"".join(store.iter_range(sha256(shared))) == shared
    assert b"".join(store.iter_range(sha256(new_shard))) == new_shard
    event = audit_events(db, "storage.collected")[-1]
    assert event.actor == "system:cli"
    assert event.target_id == store.name
    assert event.after == {
        "objects": 3,
        "bytes": report.bytes,
        "strays": 1,
        "abandoned_uploads": abandoned,
    }

    again = collect.collect(session_factory, store, now=later, min_age=DAY)
    assert (again.removed, again.kept, again.uploads) == ([], 0, [])
    assert len(audit_events(db, "storage.collected")) == 1


@BOTH
def test_an_upload_whose_bytes_were_collected_meanwhile_is_refused_whole(
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    store: ObjectStore,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish_release(client, admin_headers, files={}, publish=False)
    real = uploads.stream_to_store

    async def collected_after_streaming(
        store: ObjectStore, body: AsyncIterator[bytes], **kw: Any
    ) -> StoredBlob:
        # The collector runs between the bytes landing and the file's registration.
        blob = await real(store, body, **kw)
        with session_factory() as other:
            assert collect.remove_if_unreferenced(
                other, store, blob.sha256, size=blob.size, now=clock.now(), written_before=None
            )
        return blob

    monkeypatch.setattr(uploads, "stream_to_store", collected_after_streaming)
    url = "/v1/models/acme/atlas-7b/releases/v1/files/w.bin"
    r = client.put(url, params={"component": "weights"}, content=b"w" * 100, headers=admin_headers)
    assert r.status_code == 503
    assert r.json()["code"] == "upload_collected"
    assert r.headers["Retry-After"] == "1"
    db.expire_all()
    assert db.scalar(select(ReleaseFile.id)) is None
    assert rows(db) == set()
    assert contents(store) == []

    monkeypatch.undo()
    check(
        client.put(url, params={"component": "weights"}, content=b"w" * 100, headers=admin_headers),
        201,
    )
    assert rows(db) == {sha256(b"w" * 100)}
    assert b"".join(store.iter_range(sha256(b"w" * 100))) == b"w" * 100


@pytest.fixture
def pg_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Two real connections need committed rows: a database of this test's own."""
    with fresh_database(tmp_path, kind="postgresql", label="gc") as url:
        engine = make_engine(url)
        try:
            yield make_sessionmaker(engine)
        finally:
            engine.dispose()


@pytest.mark.own_database
def test_collector_and_registering_upload_exclude_each_other(
    pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = FilesystemStore(tmp_path / "objects")
    sha = put(store, b"bytes two uploads share")
    now = datetime.now(UTC)
    with pg_sessions() as s:
        s.add(StoredObject(sha256=sha, size=23, created_at=now))
        s.commit()

    # An upload registering these bytes holds the row shared: the collector cannot take it.
    with pg_sessions() as upload, pg_sessions() as collector:
        assert repo.stored_object(upload, sha, lock=True) is not None
        lock_timeout(collector)
        with pytest.raises(OperationalError, match="lock timeout"):
            collect.remove_if_unreferenced(
                collector, store, sha, size=23, now=now, written_before=None
            )
        assert store.exists(sha)
        upload.rollback()

    # The collector holds it: a registering upload waits until the bytes and row are gone.
    with pg_sessions() as collector, pg_sessions() as upload:
        collector.execute(select(StoredObject).where(StoredObject.sha256 == sha).with_for_update())
        lock_timeout(upload)
        with pytest.raises(OperationalError, match="lock timeout"):
            repo.stored_object(upload, sha, lock=True)
        collector.rollback()

    with pg_sessions() as collector:
        assert collect.remove_if_unreferenced(
            collector, store, sha, size=23, now=now, written_before=None
        )
    assert not store.exists(sha)
    with pg_sessions() as s:
        assert s.get(StoredObject, sha) is None


def test_storage_gc_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the embedded defaults: a stray older than the grace goes, a recent one stays."""
    from typer.testing import CliRunner

    from app.cli.main import app as cli
    from app.settings import get_settings

    monkeypatch.setenv("WEIGHTGATE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("WEIGHTGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("WEIGHTGATE_STORAGE_URL", raising=False)
    get_settings.cache_clear()
    try:
        store = FilesystemStore((tmp_path / "var" / "objects").resolve())
        old, recent = put(store, b"left two days ago"), put(store, b"an upload in progress")
        # Times from the clock the command reads, not the kernel's (see make test-future).
        now = datetime.now(UTC).timestamp()
        two_days_ago = now - 2 * DAY.total_seconds()
        os.utime(store.path_for(old), (two_days_ago, two_days_ago))
        os.utime(store.path_for(recent), (now, now))
        dead = store.staging / "upload-dead"
        dead.write_bytes(b"12345")
        os.utime(dead, (two_days_ago, two_days_ago))
        runner = CliRunner()
        dry = runner.invoke(cli, ["storage", "gc", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert dry.output.splitlines() == [
            f"would remove {old} 17 bytes (no row)",
            "would remove abandoned upload upload-dead 5 bytes",
            "would remove 1 objects, 17 bytes, and 1 abandoned uploads; kept 1 objects in use "
            "again or written in the last 24 h",
        ]
        assert store.exists(old)
        assert dead.exists()
        done = runner.invoke(cli, ["storage", "gc"])
        assert done.exit_code == 0, done.output
        assert done.output.splitlines()[-1].startswith(
            "removed 1 objects, 17 bytes, and 1 abandoned uploads; kept 1"
        )
        assert not store.exists(old)
        assert not dead.exists()
        assert store.exists(recent)
        refused = runner.invoke(cli, ["storage", "gc", "--min-age-hours", "-1"])
        assert refused.exit_code == 2
    finally:
        get_settings.cache_clear()
