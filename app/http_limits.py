"""How much a request may send: bodies bounded per route, before the route reads them.

FastAPI reads a JSON body in full before it authenticates the caller or validates anything,
so an unbounded body is memory and CPU anyone can spend, credentials or not (a 100 MB body
was read whole before its 401). Each route's bound is in :data:`BODY_LIMITS`, matched on the
method and the raw path; a declared ``Content-Length`` above it is refused at once, without
reading a byte, and a body that turns out longer (chunked, or lying) is cut off at the bound.
Either way the answer is ``413 payload_too_large``.

File uploads are the exception: they stream to storage under their own bound
(``WEIGHTGATE_MAX_UPLOAD_BYTES``, checked by the upload route and while it streams).
Request heads (the request line and headers) are bounded by the HTTP server
(:mod:`app.http_server`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, problem_response

KIB = 1024
MIB = 1024 * KIB

# Enough for any JSON body of the API but the catalogue's models, whose license text may be
# 200,000 characters (up to six bytes each once JSON-escaped).
DEFAULT_BODY_LIMIT = 1 * MIB


@dataclass(frozen=True)
class BodyLimit:
    method: str
    path: re.Pattern[str]
    limit: int | None  # None: the route bounds its body itself (uploads)


_SEGMENT = r"[^/]+"
BODY_LIMITS = (
    BodyLimit(
        "PUT", re.compile(rf"^/v1/models/{_SEGMENT}/{_SEGMENT}/releases/{_SEGMENT}/files/"), None
    ),
    BodyLimit("POST", re.compile(r"^/v1/oauth/token$"), 4 * KIB),
    BodyLimit("POST", re.compile(r"^/v1/models$"), 4 * MIB),
    BodyLimit("PATCH", re.compile(rf"^/v1/models/{_SEGMENT}/{_SEGMENT}$"), 4 * MIB),
)
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


def body_limit(method: str, path: str) -> int | None:
    """The most bytes a ``method`` request to ``path`` may send (``None``: no bound here)."""
    for rule in BODY_LIMITS:
        if rule.method == method and rule.path.match(path):
            return rule.limit
    return DEFAULT_BODY_LIMIT


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {limit} bytes", limit=limit)


class LimitRequestBodies:
    """ASGI middleware applying :func:`body_limit` to every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await problem_response(too_large(limit))(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read: FastAPI passes an HTTPException
                    # on unchanged, and the app's handler renders it as payload_too_large.
                    raise HTTPException(413, too_large(limit).detail)
            return message

        await self.app(scope, bounded, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) <= 18 else None
    return None
