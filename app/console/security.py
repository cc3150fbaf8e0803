"""The console's browser-facing defences: response headers on every ``/console`` answer,
and the Origin and CSRF-token checks every unsafe request must pass.

Why both checks: the ``SameSite=Lax`` cookie already keeps a cross-site POST from carrying
the session, the ``Origin`` check refuses it even where the browser (or a sibling subdomain)
would send it, and the per-session token refuses a forged request that got past both (a
same-site page under someone else's control). Each alone has had holes in some browser.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import Forbidden

PREFIX = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# No inline script or style anywhere: every script and stylesheet is a file under
# /console/static. htmx is told not to inject its indicator <style> (base.html).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class ConsoleHeaders:
    """Adds :data:`HEADERS` to every answer under ``/console`` (pages, redirects, errors),
    and ``Cache-Control: no-store`` unless the answer set its own (static files do): a
    signed-in page must not be kept by the browser or a shared cache."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: Request, public_url: str) -> None:
    """An unsafe request must come from a page of this server: its ``Origin`` (or, from a
    browser that sends none, its ``Referer``) is the public URL's origin or the origin the
    request itself was addressed to (as Django checks it: a reverse proxy that keeps the
    Host header needs no extra setting). A request naming neither is refused."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or sent == "null":
        raise Forbidden(
            "this form must be sent from a page of the console (no Origin header)",
            code="cross_origin",
        )
    allowed = {origin_of(public_url)}
    host = request.headers.get("host")
    if host:
        allowed.add(f"{request.url.scheme}://{host}".lower())
    if origin_of(sent) not in allowed:
        raise Forbidden("this form was sent from another site", code="cross_origin")


def check_csrf(expected: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden(
            "the form's security token is missing or stale: reload the page and try again",
            code="csrf_failed",
        )
