"""Downloads skip FastAPI's router: matched here, handled by the same route function.

Every other route goes through FastAPI's routing (a regular expression per route, in
order) and its parameter solving, which together cost more CPU than everything else a
redemption does on the event loop once its database work is batched. Downloads are by far
the most frequent request (one per file, again per resumed range), so this small ASGI
layer recognises their one URL shape and calls :func:`app.delivery.router.download`
directly, with the request FastAPI would have built and the app's own ``AppError`` handler
for refusals. The route stays declared on the router: OpenAPI documents it, and anything
this layer does not take (another method, a URL that is not a download) goes on to FastAPI
unchanged.

It sits inside the request-id/metrics/logging middleware and the NUL guard, so a download
is observed and guarded exactly like any other request.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.delivery.router import FILES_PATH, download, router
from app.errors import AppError, MethodNotAllowed

# Starlette's convertors: ``{x}`` is ``[^/]+``, ``{path:path}`` is ``.*``, anchored.
_FILES = re.compile(r"^/v1/files/([^/]+)/([^/]+)/([^/]+)/(.*)$")
_METHODS = frozenset({"GET", "HEAD"})
_ALLOW = "GET, HEAD, OPTIONS"


class DownloadFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The declared route FastAPI would have matched: the metrics label it by its template.
        self._route: BaseRoute = next(
            r for r in router.routes if getattr(r, "path", None) == FILES_PATH
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _FILES.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Any
        if scope["method"] == "OPTIONS":
            response = Response(status_code=204, headers={"Allow": _ALLOW})
            await response(scope, receive, send)
            return
        if scope["method"] not in _METHODS:
            # FastAPI would answer from one of the two single-method routes and list only
            # its method in Allow; a download URL allows both.
            refused = MethodNotAllowed(
                f"{scope['method']} is not allowed on a download URL: use GET or HEAD",
                headers={"Allow": _ALLOW},
            )
            response = await self._refusal(request, refused)
            await response(scope, receive, send)
            return
        namespace, name, version, path = match.groups()
        scope["path_params"] = {
            "namespace": namespace,
            "name": name,
            "version": version,
            "path": path,
        }
        scope["route"] = self._route
        try:
            response = await download(request)
        except AppError as err:
            response = await self._refusal(request, err)
        await response(scope, receive, send)

    @staticmethod
    async def _refusal(request: Request, err: AppError) -> Any:
        """The app's own AppError handler: the same problem+json and denial metrics."""
        handler = request.scope["app"].exception_handlers[AppError]
        return await handler(request, err)
