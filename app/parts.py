"""The app's long-lived parts (settings, clock, database, object store, keys, the download
batcher, caches, probes), built once by :func:`app.main.create_app` and read through
:func:`parts_of` or the ``PartsDep`` dependency: one typed container instead of attributes
on ``app.state``.

The parts are frozen together. To run the app with other settings (or another store, or
session factory), a test builds the app with them, or swaps the whole container:
``swap_parts(app, dataclasses.replace(parts_of(app), settings=...))``. Whatever holds on to
the app reads its parts when it runs (the download batcher, the readiness checks, the
partner-token authenticator), so a swap reaches every request made after it.

This module sits below the domains (they all read it), so the domain types of its fields are
named for the type checker only: at run time it imports nothing of the domains, and the
import contracts, which check what runs, leave these type-only imports out (pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from app.clock import Clock
from app.settings import Settings
from app.storage import ObjectStore

if TYPE_CHECKING:
    from app.auth.dependencies import Authenticators
    from app.catalogue.cached import CatalogueCache
    from app.delivery.group_commit import GroupCommit
    from app.delivery.presign import PresignCache
    from app.delivery.service import Authorized
    from app.delivery.service import Request as DownloadRequest
    from app.freshness import Freshness
    from app.observability.metrics import DatabaseCollector
    from app.observability.readiness import Readiness
    from app.signing.keys import ReleaseKeySet
    from app.tokens.keys import KeySet


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    settings: Settings
    clock: Clock
    engine: Engine
    sessionmaker: sessionmaker[Session]
    # A connection pool of its own for /readyz and the database gauges, so that a saturated
    # request pool does not make a healthy database look down.
    probe_engine: Engine
    store: ObjectStore
    keys: KeySet  # download and partner tokens (ES256)
    release_keys: ReleaseKeySet  # release signatures
    authenticators: Authenticators  # API keys and partner tokens, for app.auth
    # Downloads (/v1/files and the Hub's resolve) arriving together, redeemed in one batch.
    redeemer: GroupCommit[DownloadRequest, Authorized]
    presign_cache: PresignCache
    # The cache epoch and the caches it governs (app/freshness.py): API keys (inside
    # authenticators) and the catalogue reads of the Hub routes and the manifest.
    freshness: Freshness
    catalogue_cache: CatalogueCache
    readiness: Readiness
    database_metrics: DatabaseCollector
    # Whether the scheduler, the webhook deliveries and the safety sweep run with the app.
    run_background: bool


def parts_of(app: Starlette) -> Parts:
    """The parts of an app made by :func:`app.main.create_app`."""
    parts = app.state.parts
    if not isinstance(parts, Parts):
        raise TypeError("the app was not made by create_app: it has no parts")
    return parts


def swap_parts(app: Starlette, parts: Parts) -> None:
    """Give the app other parts (a test's other settings, say): requests from now on use
    them. Made by ``dataclasses.replace`` of the current ones, so nothing is forgotten."""
    app.state.parts = parts


# ``async``: FastAPI runs a sync dependency in the thread pool, a hop that costs more than
# reading an attribute.
async def get_parts(request: Request) -> Parts:
    return parts_of(request.app)


PartsDep = Annotated[Parts, Depends(get_parts)]
