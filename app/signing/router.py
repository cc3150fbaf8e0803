"""The release-signing keys, published: ``GET /.well-known/release-keys.json``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.db import SessionDep
from app.signing import service
from app.signing.keys import ReleaseKeysDep

router = APIRouter(tags=["signing"])


@router.get("/.well-known/release-keys.json")
def release_keys(keys: ReleaseKeysDep, session: SessionDep) -> JSONResponse:
    """Every key that ever signed a release here (with the period it signed in), and every
    release whose signatures were revoked: what ``weightgate trust add <server>`` pins."""
    body = {**keys.document(), "revoked": service.revoked_releases(session)}
    # Short cache: a revocation must reach verifiers that refresh their pins soon.
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
