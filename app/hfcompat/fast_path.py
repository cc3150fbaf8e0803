"""The Hub's ``/resolve`` skips FastAPI's router, as downloads do (app/delivery/fast_path.py).

Its routes are included last (their ``/{namespace}/{name}/...`` paths are the most
generic), so FastAPI tried every other route of the app first — over a hundred, each a
regular expression and, in FastAPI 0.165, a walk through the included routers — which cost
more CPU than the rest of a cached resolve. ``huggingface_hub`` sends a HEAD and a GET of
``/resolve`` per file, so this layer recognises that URL shape and calls
:func:`app.hfcompat.router.resolve` directly.

It takes only URLs no other route could have answered: their first segment is not the
first segment of any route outside the Hub's routers (``v1``, ``api``, ``console``, …),
read from the app's routes at the first request. If some route outside them began with a
parameter, that could not be known, and the layer takes nothing. Anything it does not take
goes on to FastAPI unchanged; the routes stay declared for OpenAPI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import AppError
from app.hfcompat.router import RESOLVE_PATH, resolve
from app.hfcompat.router import router as hf_router

_RESOLVE = re.compile(r"^/([^/]+)/([^/]+)/resolve/([^/]+)/(.*)$")


def first_segments(routes: Iterable[BaseRoute], *, skip: object) -> frozenset[str] | None:
    """The first path segment of every route outside the router ``skip`` (walking included
    routers); ``None`` if one of them starts with a parameter (or cannot be read)."""
    out: set[str] = set()
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            if inner is skip:
                continue
            nested = first_segments(inner.routes, skip=skip)
            if nested is None:
                return None
            out |= nested
            continue
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return None
        segment = path.lstrip("/").split("/", 1)[0]
        if "{" in segment or (isinstance(route, Mount) and not segment):
            return None
        out.add(segment)
    return frozenset(out)


class HubResolveFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._taken: frozenset[str] | None = None
        self._known = False
        self._routes: dict[str, Any] = {
            method: r
            for r in hf_router.routes
            if getattr(r, "path", None) == RESOLVE_PATH
            for method in getattr(r, "methods", ())
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _RESOLVE.match(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] not in ("GET", "HEAD") or not self._free(scope, match):
            await self.app(scope, receive, send)
            return
        namespace, name, rev, path = match.groups()
        scope["path_params"] = {"namespace": namespace, "name": name, "rev": rev, "path": path}
        # The declared route FastAPI would have matched: the metrics label it by its template.
        scope["route"] = self._routes[scope["method"]]
        request = Request(scope, receive)
        try:
            response = await resolve(namespace, name, rev, path, request)
        except AppError as err:
            # The app's own AppError handler: the same problem+json and denial metrics.
            response = await scope["app"].exception_handlers[AppError](request, err)
        await response(scope, receive, send)

    def _free(self, scope: Scope, match: re.Match[str]) -> bool:
        """Whether no route outside the Hub's could match this URL."""
        if not self._known:
            self._taken = first_segments(scope["app"].routes, skip=hf_router)
            self._known = True
        return self._taken is not None and match.group(1) not in self._taken
