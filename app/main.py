"""Application factory: wires settings, database, store, keys, clock, routers and handlers,
and runs the background loops (scheduler, webhook deliveries) for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app import __version__, api_schema
from app.access.key_cache import ApiKeyCache
from app.access.router import router as access_router
from app.apidocs import mount_api_docs
from app.audit.router import router as audit_router
from app.auth.dependencies import Authenticators
from app.catalogue.cached import CatalogueCache
from app.catalogue.router import router as catalogue_router
from app.clock import Clock, SystemClock
from app.console.problems import render_problem
from app.console.router import router as console_router
from app.console.security import ConsoleHeaders
from app.context import RequestContext
from app.db import make_engine, make_sessionmaker
from app.delivery.batcher import make_redeemer
from app.delivery.fast_path import DownloadFastPath
from app.delivery.presign import PresignCache
from app.delivery.router import router as delivery_router
from app.errors import AppError, register_error_handlers
from app.freshness import Freshness, database_freshness
from app.hfcompat.fast_path import HubResolveFastPath
from app.hfcompat.router import router as hf_router
from app.http_guard import RefuseNulInUrl
from app.http_limits import LimitRequestBodies
from app.observability.logging import configure_logging
from app.observability.metrics import DatabaseCollector, count_denial
from app.observability.middleware import RequestObservability
from app.observability.probe import make_probe_engine, ping
from app.observability.readiness import Readiness
from app.observability.router import router as ops_router
from app.parts import Parts, parts_of, swap_parts
from app.policy.principals import Principal
from app.request_gate import POSTGRESQL_LIMIT, SQLITE_LIMIT, RequestGate
from app.safety.router import router as safety_router
from app.safety.sweep import run_sweep
from app.schedule.claimer import due_stages_query
from app.schedule.loop import SqliteSchedulerLock, run_scheduler
from app.schedule.router import router as schedule_router
from app.settings import Settings, get_settings
from app.signing.keys import check_distinct
from app.signing.loading import load_release_keys
from app.signing.router import router as signing_router
from app.storage import ObjectStore, open_store
from app.tokens.keys import load_key_set
from app.tokens.partner_auth import authenticate_partner_token
from app.tokens.router import router as tokens_router
from app.webhooks.router import router as webhooks_router
from app.webhooks.worker import DeliveryWorker

log = logging.getLogger(__name__)

# How long shutdown waits for a pass in progress (its transaction is short; HTTP deliveries
# are bounded by webhook_timeout_seconds) before abandoning it to the next replica.
_SHUTDOWN_GRACE = 15.0


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    store: ObjectStore | None = None,
    engine: Any = None,
    sessions: sessionmaker[Session] | None = None,
    run_background: bool | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    own_engine = engine is None
    engine = engine or make_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if parts_of(app).run_background:
                async with _background(parts_of(app)):
                    yield
            else:
                yield
        finally:
            parts_of(app).probe_engine.dispose()
            parts_of(app).freshness.close()
            if own_engine:
                engine.dispose()

    app = FastAPI(
        title="weightgate",
        version=__version__,
        description="Staged model-weight distribution: tiered embargoes, signed tokens.",
        lifespan=lifespan,
        # Served by app.apidocs from an installed package: FastAPI's pages load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    clock = clock or SystemClock()
    now = clock.now()
    keys = load_key_set(settings, now=now)
    release_keys = load_release_keys(settings, now=now)
    check_distinct(release_keys, [s.key.public for s in keys.statuses(now)])
    probe_engine = make_probe_engine(engine.url)
    # Per-process caches of the hot routes answer only while nothing they hold has changed
    # (app/freshness.py): this process's commits move the epoch at once, other writers'
    # within settings.cache_check_seconds.
    freshness = database_freshness(engine, interval=settings.cache_check_seconds)

    def current() -> Parts:
        return parts_of(app)

    swap_parts(
        app,
        Parts(
            settings=settings,
            clock=clock,
            engine=engine,
            sessionmaker=sessions or make_sessionmaker(engine),
            probe_engine=probe_engine,
            store=store or open_store(settings),
            keys=keys,
            release_keys=release_keys,
            authenticators=_authenticators(current, freshness),
            redeemer=make_redeemer(current, max_batch=settings.delivery_max_batch),
            presign_cache=PresignCache(),
            freshness=freshness,
            catalogue_cache=CatalogueCache(freshness),
            # The checks read the parts when they run: tests swap the store and the probe
            # engine.
            readiness=Readiness(
                {
                    "database": lambda: ping(current().probe_engine),
                    "storage": lambda: current().store.check(),
                },
                clock=clock,
                grace_seconds=settings.ready_grace_seconds,
                timeout_seconds=settings.ready_check_timeout_seconds,
            ),
            database_metrics=DatabaseCollector(
                probe_engine, clock.now, due_stages=due_stages_query
            ),
            run_background=(
                settings.scheduler_enabled if run_background is None else run_background
            ),
        ),
    )

    configure_logging(settings)
    register_error_handlers(app, observe=_count_denial, render=render_problem)
    # Innermost: downloads bypass FastAPI's routing, inside the guard and observability.
    app.add_middleware(HubResolveFastPath)  # the Hub's HEAD and GET of a file, likewise
    app.add_middleware(DownloadFastPath)
    app.add_middleware(RequestGate, limit=SQLITE_LIMIT if settings.is_sqlite else POSTGRESQL_LIMIT)
    app.add_middleware(LimitRequestBodies)
    app.add_middleware(RefuseNulInUrl)
    app.add_middleware(ConsoleHeaders)
    # Added last = outermost: even refused URLs get a request id and are counted.
    app.add_middleware(RequestObservability)
    # First: routes are matched in order, and downloads are the hottest path by far (each
    # router passed over costs a regex match per route on every request).
    app.include_router(delivery_router)
    app.include_router(ops_router)
    app.include_router(catalogue_router)
    app.include_router(schedule_router)
    app.include_router(access_router)
    app.include_router(tokens_router)
    app.include_router(signing_router)
    app.include_router(audit_router)
    app.include_router(webhooks_router)
    app.include_router(safety_router)
    app.include_router(console_router)
    mount_api_docs(app)
    api_schema.install(app)
    # Last: its /{namespace}/{name}/resolve/... paths are the most generic.
    app.include_router(hf_router)
    return app


def _authenticators(current: Callable[[], Parts], freshness: Freshness) -> Authenticators:
    """How :mod:`app.auth` checks credentials: API keys by the access domain, partner access
    tokens by the tokens domain (with the settings and keys the app holds at call time)."""

    def partner_token(
        session: Session, value: str, *, now: datetime, ctx: RequestContext
    ) -> Principal:
        parts = current()
        return authenticate_partner_token(
            session, value, now=now, settings=parts.settings, keys=parts.keys, ctx=ctx
        )

    return Authenticators(api_key=ApiKeyCache(freshness), partner_token=partner_token)


def _count_denial(exc: AppError) -> None:
    """Denials (401/403/429) are counted by their stable code."""
    if exc.status in (401, 403, 429):
        count_denial(exc.code)


@asynccontextmanager
async def _background(parts: Parts) -> AsyncIterator[None]:
    """Run the scheduler, the delivery loop and the safety sweep while the app serves; stop
    them on shutdown."""
    settings = parts.settings
    lock = SqliteSchedulerLock(settings.effective_database_url) if settings.is_sqlite else None
    if lock is not None:
        lock.acquire()  # refuses to start a second scheduler on one SQLite database
    stop, wake = asyncio.Event(), asyncio.Event()
    worker = DeliveryWorker(sessions=parts.sessionmaker, clock=parts.clock, settings=settings)
    tasks = [
        asyncio.create_task(
            run_scheduler(
                parts.sessionmaker,
                clock=parts.clock,
                settings=settings,
                stop=stop,
                wake_deliveries=wake,
            ),
            name="weightgate-scheduler",
        ),
        asyncio.create_task(worker.run(stop, wake), name="weightgate-webhooks"),
        asyncio.create_task(
            run_sweep(
                parts.sessionmaker,
                clock=parts.clock,
                settings=settings,
                stop=stop,
                wake_deliveries=wake,
            ),
            name="weightgate-safety",
        ),
    ]
    try:
        yield
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=_SHUTDOWN_GRACE)
        for task in pending:
            log.warning("background.abandoned", extra={"task": task.get_name()})
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if lock is not None:
            lock.release()
