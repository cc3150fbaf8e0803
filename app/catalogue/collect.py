"""Garbage collection of stored objects that no file refers to (``weightgate storage gc``).

Objects are content-addressed and shared by every file with the same bytes, so deleting a
file from a draft, or uploading new bytes over one, leaves its object where it was: another
file may still need it. Nothing else removes them, so without this the store only grows
(each re-uploaded draft shard is gigabytes). Collected:

- objects with a ``stored_objects`` row that no release file refers to any more;
- *strays*, objects in the store with no row at all: bytes an upload stored before its
  process died, or whose clean-up after a failed registration failed too;
- staging data of uploads whose process died mid-stream (a temporary file, an incomplete S3
  multipart upload).

Only what was not written for ``min_age`` goes: an upload in progress has its bytes in the
store before it has a row, and writes to its staging data as it streams.

**Against concurrent uploads of the same bytes**, each object is removed in a transaction of
its own that holds the object's row locked (``FOR UPDATE``; for a stray, a placeholder row
it inserts) while it checks that no file refers to it and deletes the bytes. An upload
registering those bytes locks the same row and, holding it, checks that they are still
there (:func:`app.catalogue.uploads.register_file`). Whichever comes second sees what the
first did: the collector finds the new reference and leaves the object, or the upload finds
its bytes gone and answers 503 to be sent again. A file never points at missing bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app import audit
from app.catalogue import repository as repo
from app.models import ReleaseFile, StoredObject
from app.storage import ObjectStore, StaleUpload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    sha256: str
    size: int
    stray: bool  # in the store with no row


@dataclass
class Report:
    removed: list[Candidate] = field(default_factory=list)
    # Candidates left alone: referenced again, or written within min_age, when looked at.
    kept: int = 0
    uploads: list[StaleUpload] = field(default_factory=list)  # abandoned staging data

    @property
    def bytes(self) -> int:
        return sum(c.size for c in self.removed)


def candidates(session: Session, store: ObjectStore) -> list[Candidate]:
    """Rows no file refers to, and objects in the store with no row; by hash."""
    used = exists().where(ReleaseFile.sha256 == StoredObject.sha256)
    rows = session.execute(select(StoredObject.sha256, StoredObject.size, used)).all()
    session.rollback()  # no transaction held open while the store is listed
    found = {
        sha: Candidate(sha, int(size), stray=False) for sha, size, in_use in rows if not in_use
    }
    known = {sha for sha, _, _ in rows}
    for obj in store.listing():
        if obj.sha256 not in known:
            found[obj.sha256] = Candidate(obj.sha256, obj.size, stray=True)
    return [found[sha] for sha in sorted(found)]


def remove_if_unreferenced(
    session: Session,
    store: ObjectStore,
    sha256: str,
    *,
    size: int,
    now: datetime,
    written_before: datetime | None,
) -> bool:
    """Delete the object and its row if no file refers to it and (with ``written_before``)
    it was last written before then, holding the row locked; commit. Whether it went.
    Raises :class:`app.storage.StorageError` (nothing changed) if the store fails."""
    row = session.execute(
        select(StoredObject).where(StoredObject.sha256 == sha256).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        # A stray: this placeholder holds the name while the bytes go. An upload registering
        # them meanwhile waits on it (same primary key), or got there first: leave it.
        try:
            with session.begin_nested():
                session.add(StoredObject(sha256=sha256, size=size, created_at=now))
                session.flush()
        except IntegrityError:
            session.rollback()
            return False
    if repo.object_references(session, sha256):
        session.rollback()
        return False
    written = store.modified(sha256)
    if not _old_enough(written, written_before):
        session.rollback()
        return False
    if written is not None:
        store.delete(sha256)
    session.execute(delete(StoredObject).where(StoredObject.sha256 == sha256))
    session.commit()
    return True


def _old_enough(written: datetime | None, before: datetime | None) -> bool:
    """Whether an object last written at ``written`` (``None``: gone already) may go."""
    return written is None or before is None or written < before


def collect(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    *,
    now: datetime,
    min_age: timedelta,
    dry_run: bool = False,
    actor: str = "system:cli",
) -> Report:
    """Remove every unreferenced object last written before ``now - min_age``; with
    ``dry_run``, only say which. One audit event for the run, when anything went."""
    before = now - min_age
    report = Report()
    with sessions() as session:
        found = candidates(session, store)
    try:
        for c in found:
            if dry_run:
                went = _old_enough(store.modified(c.sha256), before)
            else:
                with sessions() as session:
                    went = remove_if_unreferenced(
                        session, store, c.sha256, size=c.size, now=now, written_before=before
                    )
                if went:
                    log.info("storage.collected", extra={"sha256": c.sha256, "bytes": c.size})
            if went:
                report.removed.append(c)
            else:
                report.kept += 1
        for upload in store.stale_uploads(before):
            if not dry_run:
                store.discard_upload(upload)
                log.info(
                    "storage.upload_discarded", extra={"upload": upload.name, "bytes": upload.size}
                )
            report.uploads.append(upload)
    finally:
        # Also when the store failed part way: what went is on record.
        if (report.removed or report.uploads) and not dry_run:
            _audit(sessions, report, store=store, now=now, actor=actor)
    return report


def _audit(
    sessions: sessionmaker[Session],
    report: Report,
    *,
    store: ObjectStore,
    now: datetime,
    actor: str,
) -> None:
    with sessions() as session:
        audit.record(
            session,
            now=now,
            actor=actor,
            action="storage.collected",
            target_type="store",
            target_id=store.name,
            after={
                "objects": len(report.removed),
                "bytes": report.bytes,
                "strays": sum(c.stray for c in report.removed),
                "abandoned_uploads": len(report.uploads),
            },
        )
        session.commit()
