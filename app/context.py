"""Per-request facts services need but should not dig out of HTTP: clock, address, request id."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

from app.clock import Clock
from app.parts import parts_of
from app.settings import Settings


@dataclass(frozen=True)
class RequestContext:
    client_addr: str | None
    request_id: str | None


def get_clock(request: Request) -> Clock:
    return parts_of(request.app).clock


def get_settings_dep(request: Request) -> Settings:
    return parts_of(request.app).settings


# audit_events.client_addr; an IPv6 address, the longest form, takes 39 characters.
MAX_ADDRESS = 64


@lru_cache(maxsize=4096)
def client_address(host: str) -> str:
    """The caller's address as recorded and rate-limited: an IP address in its canonical
    form (an IPv4-mapped IPv6 address as the IPv4 one, so both share a quota; a zone id
    dropped), or, for anything else the server was told (a test client's name, or whatever a
    proxy passed on in ``X-Forwarded-For``), its printable characters, cut to fit."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return "".join(c for c in host if " " < c <= "~")[:MAX_ADDRESS]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def get_context(request: Request) -> RequestContext:
    return RequestContext(
        client_addr=client_address(request.client.host) if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


# The dependencies are ``async`` wrappers of the plain functions above: FastAPI runs a sync
# dependency in the thread pool, and three thread hops per request for reading app state
# cost more CPU than many a route's own work. Nothing here blocks.
async def _clock(request: Request) -> Clock:
    return get_clock(request)


async def _settings(request: Request) -> Settings:
    return get_settings_dep(request)


async def _context(request: Request) -> RequestContext:
    return get_context(request)


ClockDep = Annotated[Clock, Depends(_clock)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ContextDep = Annotated[RequestContext, Depends(_context)]
