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
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.delivery.router import FILES_PATH, download, router
from app.errors import AppError

# Starlette's convertors: ``{x}`` is ``[^/]+``, ``{path:path}`` is ``.*``, anchored.
_FILES = re.compile(r"^/v1/files/([^/]+)/([^/]+)/([^/]+)/(.*)$")
_METHODS = frozenset({"GET", "HEAD"})


class DownloadFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The declared route FastAPI would have matched: the metrics label it by its template.
        self._route: BaseRoute = next(
            r for r in router.routes if getattr(r, "path", None) == FILES_PATH
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        match = _FILES.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        namespace, name, version, path = match.groups()
        scope["path_params"] = {
            "namespace": namespace,
            "name": name,
            "version": version,
            "path": path,
        }
        scope["route"] = self._route
        request = Request(scope, receive)
        response: Any
        try:
            response = await download(request)
        except AppError as err:
            handler = scope["app"].exception_handlers[AppError]
            response = await handler(request, err)
        await response(scope, receive, send)
