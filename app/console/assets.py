"""The console's static files (``static/``), read once and served from memory.

Each URL carries the file's content hash (``?v=``): a page always names the bytes it was
written against, so a browser may keep them for a year (``immutable``) and a new release of
the server is picked up at once. A URL with any other ``v`` (an old page, a stranger's
guess) is served the current bytes with ``no-cache``, never a year-long promise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import Request, Response

from app.errors import NotFound

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_SERVED = ("htmx.min.js", "console.js", "console.css", "favicon.svg", "htmx.LICENSE.txt")


@dataclass(frozen=True)
class Asset:
    body: bytes
    version: str
    media_type: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _load() -> dict[str, Asset]:
    folder = resources.files("app.console").joinpath("static")
    assets = {}
    for name in _SERVED:
        body = folder.joinpath(name).read_bytes()
        suffix = name[name.rfind(".") :]
        assets[name] = Asset(body, hashlib.sha256(body).hexdigest()[:16], _TYPES[suffix])
    return assets


ASSETS = _load()


def static_url(name: str) -> str:
    return f"/console/static/{name}?v={ASSETS[name].version}"


def serve_asset(request: Request, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFound("no such file", code="route_not_found")
    current = request.query_params.get("v") == asset.version
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
