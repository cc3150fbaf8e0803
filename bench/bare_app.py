"""The baseline for bench/tokens.py: a bare FastAPI app served by the same uvicorn settings as
weightgate. Never part of the product.

- ``GET /bare``: an ``async`` route answering a 302, nothing else (the floor of any route);
- ``GET /direct/{sha256}``: the object streamed straight from the filesystem store with the
  same streaming code as weightgate's proxy mode, but no token, database or audit.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request, Response

from app.delivery.streaming import file_response
from app.storage.filesystem import FilesystemStore

app = FastAPI()
_root = os.environ.get("BENCH_FS_ROOT")
_store = FilesystemStore(Path(_root)) if _root else None


@app.get("/bare")
async def bare() -> Response:
    return Response(status_code=302, headers={"Location": "https://example.invalid/object"})


@app.get("/direct/{sha256}")
async def direct(sha256: str, request: Request) -> Response:
    assert _store is not None, "set BENCH_FS_ROOT"
    size = _store.size(sha256)
    assert size is not None
    response, _ = file_response(
        request.method, request.headers, _store, sha256=sha256, size=size, filename="big.bin"
    )
    return response
