"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.errors import ServiceUnavailable, problems
from app.observability.metrics import render
from app.parts import parts_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Says nothing about its dependencies."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(503))
async def readyz(request: Request) -> dict[str, str]:
    """Readiness: the database answers a query and the object store is reachable, or they
    did and have been failing for less than the grace period ("degraded"; see
    app/observability/readiness.py for why a blip must not take every replica out)."""
    report = await parts_of(request.app).readiness.probe()
    if not report.ready:
        first = report.down[0]
        raise ServiceUnavailable(
            f"{'object store' if first == 'storage' else first} unreachable",
            code=f"{first}_unreachable",
        )
    return {"status": report.status, **report.states}


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus exposition: this process's counters plus gauges read from the database."""
    body, content_type = render(parts_of(request.app).database_metrics)
    return Response(body, media_type=content_type)
