"""Refuse URLs carrying NUL bytes before any route sees them.

A NUL can never be part of a model id, version, path or query value we accept, and
PostgreSQL cannot even compare text against one (the driver raises), so letting it reach a
lookup would turn a hostile URL into a 500.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Unprocessable, problem_response


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
