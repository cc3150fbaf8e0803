"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from app.errors import ServiceUnavailable, problems
from app.observability.metrics import render
from app.storage import StorageError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Says nothing about its dependencies."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(503))
def readyz(request: Request) -> dict[str, str]:
    """Readiness: the database answers a query and the object store is reachable."""
    try:
        with request.app.state.probe_engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # any driver error means "not ready"
        raise ServiceUnavailable("database unreachable", code="database_unreachable") from e
    try:
        request.app.state.store.check()
    except StorageError as e:
        raise ServiceUnavailable("object store unreachable", code="storage_unreachable") from e
    return {"status": "ready", "database": "ok", "storage": "ok"}


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus exposition: this process's counters plus gauges read from the database."""
    body, content_type = render(getattr(request.app.state, "database_metrics", None))
    return Response(body, media_type=content_type)
