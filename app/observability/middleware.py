"""Per-request observability: a request id (taken from ``X-Request-Id`` when it is sane,
made up otherwise, always echoed back), request metrics by route *template*, and one
``http.request`` log line. Pure ASGI, so streamed downloads pass through untouched."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http_guard import guard_response_start
from app.observability.logging import REQUEST_ID
from app.observability.metrics import BYTES_SERVED, http_series

log = logging.getLogger(__name__)

HEADER = "X-Request-Id"
# Fits audit_events.request_id; no spaces or control characters that could forge log lines.
_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,63}$")
UNMATCHED = "<unmatched>"


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.match(text) else None
    return None


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestObservability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                guard_response_start(message)
                MutableHeaders(scope=message)[HEADER] = request_id
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            requests, duration = http_series(method, route, status)
            requests.inc()
            duration.observe(elapsed)
            if sent:
                BYTES_SERVED.labels(route=route).inc(sent)
            # The route template, never the raw path or query: those can carry tokens.
            log.info(
                "http.request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "bytes": sent,
                    "client": (scope.get("client") or (None,))[0],
                },
            )
            REQUEST_ID.reset(token)
