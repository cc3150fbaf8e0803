"""Streaming file uploads into a draft release.

The body is hashed while it streams into the store's staging area (never held whole in
memory); only once the object is at its content address is the file row written. If the
row cannot be written the freshly stored object is deleted again, so a failed upload leaves
neither a registered file nor an orphan object.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from app import audit
from app.catalogue import collect
from app.catalogue import repository as repo
from app.catalogue.names import MAX_PATH_BYTES, check_component, check_file_path
from app.catalogue.service import audit_target, require_draft, require_release
from app.clock import Clock
from app.context import RequestContext
from app.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)
from app.models import Component, Model, Release, ReleaseFile, StoredObject
from app.policy.principals import Principal
from app.settings import Settings
from app.signing.bundle import reserved_prefix
from app.storage import HashMismatch, ObjectStore, StorageError, StoredBlob, TooLarge
from app.storage.base import SHA256_RE

log = logging.getLogger(__name__)

# Hand the store ~4 MiB at a time: few thread hops, small and flat memory.
WRITE_BATCH = 4 * 1024 * 1024


@dataclass(frozen=True)
class UploadTarget:
    model: Model
    release: Release
    component: Component
    path: str
    replaces: ReleaseFile | None


def resolve_target(
    session: Session,
    *,
    model: Model,
    version: str,
    path: str,
    component: str | None,
    max_path_bytes: int = MAX_PATH_BYTES,
) -> UploadTarget:
    rel = require_release(session, model, version)
    require_draft(model, rel)
    check_file_path(path, max_bytes=max_path_bytes)
    check_not_reserved(path)
    existing = repo.file_by_path(session, rel.id, path)
    comp_name = component or None
    if comp_name is not None:
        check_component(comp_name)
    if comp_name is None:
        if existing is None:
            raise Unprocessable("?component= is required for a new file", code="component_required")
        comp = session.get(Component, existing.component_id)
    else:
        comp = repo.component(session, rel.id, comp_name)
    if comp is None:
        raise NotFound(
            f"component {comp_name} not found in {rel.version}; create it first",
            code="component_not_found",
        )
    return UploadTarget(model, rel, comp, path, existing)


def check_not_reserved(path: str) -> None:
    """Paths the release's signatures keep out of what they sign (app/signing/bundle.py):
    a file there would be downloaded yet never verified."""
    prefix = reserved_prefix(path)
    if prefix is not None:
        raise Unprocessable(
            f"{path!r} is under {prefix}/, which is reserved: release signatures are "
            f"published there or verifiers skip it",
            code="reserved_path",
        )


def check_declared_hash(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not SHA256_RE.fullmatch(value):
        raise Unprocessable(
            "X-Content-SHA256 must be 64 hex characters", code="invalid_sha256_header"
        )
    return value


async def stream_to_store(
    store: ObjectStore, body: AsyncIterator[bytes], *, expected_sha256: str | None, max_bytes: int
) -> StoredBlob:
    writer = store.writer(expected_sha256=expected_sha256, max_bytes=max_bytes)
    buf = bytearray()
    try:
        async for chunk in body:
            buf += chunk
            if len(buf) >= WRITE_BATCH:
                data, buf = bytes(buf), bytearray()
                await run_in_threadpool(writer.write, data)
        if buf:
            await run_in_threadpool(writer.write, bytes(buf))
        return await run_in_threadpool(writer.commit)
    except HashMismatch as e:
        raise Unprocessable(
            f"the uploaded bytes hash to {e.actual}, not the declared {e.expected}; "
            "nothing was stored",
            code="sha256_mismatch",
            actual_sha256=e.actual,
        ) from e
    except TooLarge as e:
        raise PayloadTooLarge(
            f"file exceeds the upload limit of {e.limit} bytes", code="file_too_large"
        ) from e
    except ClientDisconnect as e:
        await run_in_threadpool(writer.abort)
        raise BadRequest(
            "the client disconnected before the upload finished", code="upload_incomplete"
        ) from e
    except StorageError as e:
        await run_in_threadpool(writer.abort)
        raise ServiceUnavailable(
            "the object store failed while storing the file", code="storage_error"
        ) from e
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise


async def receive(
    session: Session,
    *,
    store: ObjectStore,
    body: AsyncIterator[bytes],
    model: Model,
    version: str,
    path: str,
    component: str | None,
    expected_sha256: str | None,
    settings: Settings,
    actor: Principal,
    clock: Clock,
    ctx: RequestContext | None,
) -> tuple[ReleaseFile, str, bool]:
    """The whole upload: check the target, stream the body into the store, then register
    the file. Returns (file row, component name, whether it replaced a file)."""

    def target() -> UploadTarget:
        return resolve_target(
            session,
            model=model,
            version=version,
            path=path,
            component=component,
            max_path_bytes=settings.max_path_bytes,
        )

    await run_in_threadpool(target)
    # End the read transaction before a possibly hour-long stream.
    await run_in_threadpool(session.commit)
    blob = await stream_to_store(
        store, body, expected_sha256=expected_sha256, max_bytes=settings.max_upload_bytes
    )

    def write_rows() -> tuple[ReleaseFile, str, bool]:
        # Re-read under the write transaction: the release may have been published, or the
        # component deleted, while the bytes streamed.
        fresh = target()
        row, _ = register_file(
            session, target=fresh, blob=blob, actor=actor, now=clock.now(), ctx=ctx
        )
        # The object's row is locked now (register_file): the collector cannot remove the
        # bytes any more, but it may have done so while they streamed (app.catalogue.collect).
        if not store.exists(blob.sha256):
            raise ServiceUnavailable(
                "the uploaded bytes were removed by storage garbage collection before the "
                "file was registered; upload it again",
                code="upload_collected",
                headers={"Retry-After": "1"},
            )
        session.commit()
        return row, fresh.component.name, fresh.replaces is not None

    try:
        return await run_in_threadpool(write_rows)
    except BaseException:
        await run_in_threadpool(discard_if_unreferenced, session, store, blob, now=clock.now())
        raise


def discard_if_unreferenced(
    session: Session, store: ObjectStore, blob: StoredBlob, *, now: datetime
) -> None:
    """After a failed registration, delete the object just stored unless a file refers to
    it (it may have been there before, shared by other files), as the collector would."""
    session.rollback()
    try:
        collect.remove_if_unreferenced(
            session, store, blob.sha256, size=blob.size, now=now, written_before=None
        )
    except (StorageError, SQLAlchemyError):
        # The original error matters more; an unreferenced object is only wasted space, and
        # `weightgate storage gc` removes it later.
        session.rollback()
        log.warning("uploads.orphan_left", extra={"sha256": blob.sha256})


def register_file(
    session: Session,
    *,
    target: UploadTarget,
    blob: StoredBlob,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None,
) -> tuple[ReleaseFile, bool]:
    """Write the file row (and the object row if new). Returns (file, object_was_new)."""
    # Locked (shared) until commit: the collector must not remove these bytes now.
    new_object = repo.stored_object(session, blob.sha256, lock=True) is None
    if new_object:
        try:
            with session.begin_nested():
                session.add(StoredObject(sha256=blob.sha256, size=blob.size, created_at=now))
        except IntegrityError:
            # A concurrent upload of the same bytes registered the object first: share it.
            new_object = False
    before = None
    if target.replaces is not None:
        row = target.replaces
        before = {"sha256": row.sha256, "size": row.size}
        row.sha256, row.size, row.component_id = blob.sha256, blob.size, target.component.id
        row.created_at = now
    else:
        row = ReleaseFile(
            release_id=target.release.id,
            component_id=target.component.id,
            path=target.path,
            size=blob.size,
            sha256=blob.sha256,
            created_at=now,
        )
        session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:
        raise Conflict(
            f"{target.path} was uploaded to {target.release.version} by another request at "
            "the same time; retry to replace it",
            code="upload_conflict",
        ) from e
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="file.uploaded",
        target_type="file",
        target_id=audit_target(target.model, target.release.version, target.path),
        before=before,
        after={
            "path": target.path,
            "sha256": blob.sha256,
            "size": blob.size,
            "component": target.component.name,
        },
        ctx=ctx,
    )
    return row, new_object


def delete_file(
    session: Session,
    *,
    model: Model,
    version: str,
    path: str,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None,
) -> None:
    """Remove a file from a draft release. Its stored object stays: other files, in this
    release or others, may have the same bytes."""
    rel = require_release(session, model, version)
    require_draft(model, rel)
    check_file_path(path)
    row = repo.file_by_path(session, rel.id, path)
    if row is None:
        raise NotFound(f"no file {path!r} in {rel.version}", code="file_not_found")
    session.delete(row)
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="file.deleted",
        target_type="file",
        target_id=audit_target(model, rel.version, path),
        before={"path": path, "sha256": row.sha256, "size": row.size},
        ctx=ctx,
    )
