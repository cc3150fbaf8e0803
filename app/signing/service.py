"""Signing a release at publish, and revoking its signatures.

Each component is signed on its own (``signatures/<component>.sig``, a file of that
component): whoever may download a component gets its signature with it, verifies exactly
what they downloaded, and learns nothing about files they may not see. A whole-release
signature would list every path, internal components' included, and would not verify a
partial download with the upstream tool (it reports the files not there as missing).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.context import RequestContext
from app.errors import Conflict, ServiceUnavailable
from app.keyfiles import KeyConfigError
from app.models import Component, Model, Release, ReleaseFile, ReleaseSignature, StoredObject
from app.policy.principals import Principal
from app.signing import bundle
from app.signing import repository as repo
from app.signing.certificates import chain_der_b64
from app.signing.keys import ReleaseKeySet, utc_text
from app.signing.pkcs11 import SigningUnavailable
from app.storage import ObjectStore, StorageError, StoredBlob
from app.webhooks.outbox import enqueue_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedComponent:
    component: Component
    path: str
    blob: StoredBlob
    key_id: str


def release_facts(model: Model, rel: Release, component: str) -> dict[str, str]:
    assert rel.revision is not None
    return {
        "model": model.repo_id,
        "version": rel.version,
        "revision": rel.revision,
        "component": component,
    }


def component_bundle(
    model: Model,
    rel: Release,
    component: str,
    files: list[ReleaseFile],
    *,
    keys: ReleaseKeySet,
    now: datetime,
) -> tuple[bytes, str]:
    """The signature file of one component, and the id of the key that made it."""
    doc = bundle.statement(
        subject=f"{model.repo_id}@{rel.version}/{component}",
        files=[(f.path, f.sha256) for f in files],
        release=release_facts(model, rel, component),
    )
    payload = bundle.payload_bytes(doc)
    try:
        key = keys.signing_key(now)
        assert key.signer is not None
        signature = key.signer.sign(bundle.pae(payload))
    except (KeyConfigError, SigningUnavailable) as e:
        # A token that stopped answering, a certificate that expired while the server ran:
        # the operator's to fix; nothing is published meanwhile.
        log.error("signing.unavailable", extra={"reason": str(e)})
        raise ServiceUnavailable(
            f"the release cannot be signed now ({e}); nothing was published, try again once "
            "the release-signing key is available",
            code="signing_unavailable",
        ) from e
    certs = chain_der_b64(key.certificates)
    return bundle.bundle(payload, signature, key_hint=key.key_id, certificates=certs), key.key_id


def store_bytes(store: ObjectStore, data: bytes) -> StoredBlob:
    try:
        writer = store.writer(max_bytes=len(data))
        try:
            writer.write(data)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise
    except StorageError as e:
        raise ServiceUnavailable(
            "the object store failed while storing the release's signatures; nothing was "
            "published, try again",
            code="storage_error",
        ) from e


def sign_release(
    session: Session,
    *,
    store: ObjectStore,
    keys: ReleaseKeySet,
    model: Model,
    rel: Release,
    files: list[ReleaseFile],
    components: list[Component],
    now: datetime,
) -> list[SignedComponent]:
    """Sign every component that has files and add its signature file to it, in the
    caller's transaction. ``rel.revision`` is set already (the signature names it).

    The signature objects are written to the store before the rows; if the transaction then
    fails they are strays that ``weightgate storage gc`` removes (content-addressed, so a
    retried publish simply writes them again).
    """
    by_component: dict[int, list[ReleaseFile]] = defaultdict(list)
    for f in files:
        by_component[f.component_id].append(f)
    signed = []
    for comp in sorted(components, key=lambda c: c.name):
        members = by_component.get(comp.id)
        if not members:
            continue
        data, key_id = component_bundle(model, rel, comp.name, members, keys=keys, now=now)
        blob = store_bytes(store, data)
        signed.append(SignedComponent(comp, bundle.signature_path(comp.name), blob, key_id))
    for s in signed:
        # Locked like an upload's object (app.catalogue.uploads.register_file), so the
        # collector cannot take the bytes between here and commit.
        if repo.stored_object_locked(session, s.blob.sha256) is None:
            try:
                with session.begin_nested():
                    session.add(
                        StoredObject(sha256=s.blob.sha256, size=s.blob.size, created_at=now)
                    )
            except IntegrityError:
                pass  # the same bytes were registered concurrently: shared
        row = ReleaseFile(
            release_id=rel.id,
            component_id=s.component.id,
            path=s.path,
            size=s.blob.size,
            sha256=s.blob.sha256,
            created_at=now,
        )
        session.add(row)
        session.flush()
        session.add(
            ReleaseSignature(
                release_id=rel.id,
                component_id=s.component.id,
                file_id=row.id,
                key_id=s.key_id,
                signed_at=now,
            )
        )
    session.flush()
    return signed


def revoke(
    session: Session,
    *,
    model: Model,
    rel: Release,
    reason: str,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> list[ReleaseSignature]:
    """Mark every signature of a release revoked (its key is compromised, or it signed
    what it should not have). The signature files stay as they are: revocation is what the
    manifest, the published keys document and ``weightgate verify`` say about them."""
    rows = repo.signatures(session, rel.id)
    if not rows:
        raise Conflict(
            f"release {rel.version} of {model.repo_id} has no signatures to revoke",
            code="release_unsigned",
        )
    if all(r.revoked_at is not None for r in rows):
        raise Conflict(
            f"the signatures of {model.repo_id}@{rel.version} are already revoked",
            code="signature_already_revoked",
        )
    for r in rows:
        if r.revoked_at is None:
            r.revoked_at, r.revoke_reason, r.revoked_by = now, reason, actor.subject
    session.flush()
    data = {
        "model": model.repo_id,
        "version": rel.version,
        "revision": rel.revision,
        "key_ids": sorted({r.key_id for r in rows}),
        "reason": reason,
        "revoked_at": now.isoformat(),
    }
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="release.signature_revoked",
        target_type="release",
        target_id=f"{model.repo_id}@{rel.version}"[:256],
        after=data,
        ctx=ctx,
    )
    enqueue_event(session, event_type="release.signature_revoked", data=data, now=now)
    return rows


def revoked_releases(session: Session) -> list[dict[str, Any]]:
    """One entry per release whose signatures were revoked, for the published keys document."""
    revoked: dict[tuple[str, str], dict[str, Any]] = {}
    for sig, rel, model in repo.revoked(session):
        entry = revoked.setdefault(
            (model.repo_id, rel.version),
            {
                "model": model.repo_id,
                "version": rel.version,
                "revision": rel.revision,
                "revoked_at": utc_text(sig.revoked_at),
                "reason": sig.revoke_reason,
                "key_ids": [],
            },
        )
        if sig.key_id not in entry["key_ids"]:
            entry["key_ids"].append(sig.key_id)
    return list(revoked.values())
