"""Guards at the HTTP edge, in and out.

In: URLs carrying NUL bytes are refused before any route sees them. A NUL can never be part
of a model id, version, path or query value we accept, and PostgreSQL cannot even compare
text against one (the driver raises), so letting it reach a lookup would turn a hostile URL
into a 500.

Out: every response's headers pass :func:`guard_response_start` (called by the request
middleware, which already sees each response start): a header value that could not be sent
is dropped, and answers get ``X-Content-Type-Options: nosniff`` and, unless they bring their
own (the API reference page), a Content-Security-Policy that lets nothing load or run.
"""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import Unprocessable, problem_response

log = logging.getLogger(__name__)

# Bytes no header value may hold (RFC 9110 §5.5: no CTL other than HTAB). A server refuses
# to send such a header and drops the connection, so the client gets no answer at all.
_UNSAFE_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# JSON and bytes render nothing, so nothing may load, run or frame them.
API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_NOSNIFF = (b"x-content-type-options", b"nosniff")


def drop_unsafe_headers(message: Message) -> None:
    """The last line of defence for "no header carries unchecked input": a header whose
    value could not be sent is left out (and logged), so the rest of the answer goes out."""
    headers = message.get("headers") or []
    if not any(_UNSAFE_VALUE.search(value) for _, value in headers):
        return
    kept = []
    for name, value in headers:
        if _UNSAFE_VALUE.search(value):
            log.error("http.header_dropped", extra={"header": name.decode("latin-1")[:64]})
        else:
            kept.append((name, value))
    message["headers"] = kept


def guard_response_start(message: Message) -> None:
    """Make an ``http.response.start`` message safe to send (see the module docstring)."""
    drop_unsafe_headers(message)
    headers = list(message.get("headers") or [])
    names = {name.lower() for name, _ in headers}
    if b"x-content-type-options" not in names:
        headers.append(_NOSNIFF)
    if b"content-security-policy" not in names:
        headers.append((b"content-security-policy", API_CSP))
    message["headers"] = headers


class RefuseNulInUrl:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = (
                bytes(scope.get("raw_path") or scope.get("path", "").encode())
                + b"?"
                + bytes(scope.get("query_string", b""))
            )
            if b"\x00" in raw or b"%00" in raw.lower() or "\x00" in scope.get("path", ""):
                err = Unprocessable(
                    "invalid URL: NUL characters are not allowed in names, paths or query values",
                    code="nul_in_url",
                )
                await problem_response(err)(scope, receive, send)
                return
        await self.app(scope, receive, send)
