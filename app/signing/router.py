"""The release-signing keys, published: ``GET /.well-known/release-keys.json``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.db import SessionDep
from app.signing import repository as repo
from app.signing.keys import ReleaseKeysDep, utc_text

router = APIRouter(tags=["signing"])


@router.get("/.well-known/release-keys.json")
def release_keys(keys: ReleaseKeysDep, session: SessionDep) -> JSONResponse:
    """Every key that ever signed a release here (with the period it signed in), and every
    release whose signatures were revoked: what ``weightgate trust add <server>`` pins."""
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
    body = {**keys.document(), "revoked": list(revoked.values())}
    # Short cache: a revocation must reach verifiers that refresh their pins soon.
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
