"""HTTP routes of the tokens domain (thin: parse, call the service, shape the answer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.context import ClockDep
from app.tokens.keys import KeysDep

router = APIRouter(tags=["tokens"])


@router.get("/.well-known/jwks.json")
async def jwks(keys: KeysDep, clock: ClockDep) -> JSONResponse:
    """Public keys that verify our tokens now (RFC 7517 JWK Set)."""
    body: dict[str, Any] = keys.jwks(clock.now())
    # Short cache: a rotated key is announced here before it signs (``--activate-in``).
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
