"""Jinja2 for the console: autoescaping on (every name, answer, reason and URL a user typed
is shown as text), times in the viewer's zone with UTC beside, one ``render`` for pages."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from app.console.assets import static_url
from app.errors import Unprocessable

ZONE_COOKIE = "wg_tz"
_MAX_ZONE = 64


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def viewer_zone(request: Request) -> zoneinfo.ZoneInfo | None:
    """The zone the browser said it is in (console.js keeps the cookie current), if it is a
    real IANA zone; ``None`` shows UTC alone."""
    name = request.cookies.get(ZONE_COOKIE, "")
    if not name or len(name) > _MAX_ZONE or name == "UTC" or name not in _zones():
        return None
    return zoneinfo.ZoneInfo(name)


def local_instant(value: str, request: Request) -> datetime | None:
    """A ``datetime-local`` form value, read in the viewer's zone (the form says which);
    ``None`` for an empty field, 422 for anything that is not a date and time."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise Unprocessable(f"{value!r} is not a date and time") from e
    if at.tzinfo is None:
        at = at.replace(tzinfo=viewer_zone(request) or UTC)
    return at.astimezone(UTC)


def format_when(at: datetime | None, zone: zoneinfo.ZoneInfo | None) -> Markup:
    """``<time>`` with the instant in the viewer's zone and in UTC beside it."""
    if at is None:
        return Markup("—")
    utc = at.astimezone(UTC)
    utc_text = utc.strftime("%Y-%m-%d %H:%M UTC")
    if zone is None:
        text = utc_text
    else:
        local = utc.astimezone(zone)
        text = f"{local.strftime('%Y-%m-%d %H:%M %Z')} ({utc_text})"
    return Markup('<time datetime="{}">{}</time>').format(utc.isoformat(), text)


def format_size(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_relative(at: datetime, now: datetime) -> str:
    """ "in 3 h", "2 d ago": how far an instant is from now, for lists."""
    seconds = (at - now).total_seconds()
    ahead, seconds = seconds >= 0, abs(seconds)
    if seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 2 * 86400:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} d"
    return f"in {amount}" if ahead else f"{amount} ago"


ENV = Environment(
    loader=PackageLoader("app.console", "templates"),
    autoescape=select_autoescape(["html", "svg"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals["static_url"] = static_url
ENV.filters["size"] = format_size
ENV.filters["relative"] = format_relative


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    as_signed_in: bool = True,
) -> HTMLResponse:
    """``as_signed_in=False`` leaves out who is signed in (error pages: a 404 must look the
    same whether or not the request got as far as loading the session)."""
    zone = viewer_zone(request)
    found = getattr(request.state, "console_session", None) if as_signed_in else None
    values = {
        "request": request,
        "signed": found,
        "user": found.user if found else None,
        "csrf_token": found.csrf_token if found else "",
        "zone": zone.key if zone else "UTC",
        "when": lambda at: format_when(at, zone),
        # A <input type="datetime-local"> value: the instant in the viewer's zone, to the second.
        "local_input": lambda at: at.astimezone(zone or UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        **(context or {}),
    }
    html = ENV.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=headers)


__all__ = ["ENV", "escape", "format_when", "local_instant", "render", "viewer_zone"]
