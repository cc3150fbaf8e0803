"""Application factory: wires settings, database, store, keys, clock, routers and handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app import __version__
from app.access.router import router as access_router
from app.audit.router import router as audit_router
from app.catalogue.router import router as catalogue_router
from app.clock import Clock, SystemClock
from app.db import make_engine, make_sessionmaker
from app.delivery.router import router as delivery_router
from app.errors import register_error_handlers
from app.hfcompat.router import router as hf_router
from app.observability.router import router as ops_router
from app.schedule.router import router as schedule_router
from app.settings import Settings, get_settings
from app.storage import ObjectStore, open_store
from app.tokens.keys import load_key_set
from app.tokens.router import router as tokens_router
from app.webhooks.router import router as webhooks_router


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    store: ObjectStore | None = None,
    engine: Any = None,
    run_background: bool | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    own_engine = engine is None
    engine = engine or make_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own_engine:
            engine.dispose()

    app = FastAPI(
        title="weightgate",
        version=__version__,
        description="Staged model-weight distribution: tiered embargoes, signed tokens.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.store = store or open_store(settings)
    app.state.clock = clock or SystemClock()
    app.state.keys = load_key_set(settings, now=app.state.clock.now())
    app.state.run_background = (
        settings.scheduler_enabled if run_background is None else run_background
    )

    register_error_handlers(app)
    app.include_router(ops_router)
    app.include_router(catalogue_router)
    app.include_router(schedule_router)
    app.include_router(access_router)
    app.include_router(tokens_router)
    app.include_router(delivery_router)
    app.include_router(audit_router)
    app.include_router(webhooks_router)
    # Last: its /{namespace}/{name}/resolve/... paths are the most generic.
    app.include_router(hf_router)
    return app
