"""Per-request facts services need but should not dig out of HTTP: clock, address, request id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.clock import Clock
from app.settings import Settings


@dataclass(frozen=True)
class RequestContext:
    client_addr: str | None
    request_id: str | None


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_context(request: Request) -> RequestContext:
    return RequestContext(
        client_addr=request.client.host if request.client else None,
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
