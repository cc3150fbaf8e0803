"""A small engine of its own for ``/readyz`` and the scrape-time gauges.

Two reasons not to borrow the application's engine: a saturated request pool must not make
the replica look dead (or hang a scrape), and on SQLite the application begins every
transaction ``IMMEDIATE`` (app/db.py), so even a ``SELECT 1`` would queue behind any write.
This engine uses the driver's defaults: on SQLite, plain reads run without a transaction
(WAL lets them proceed while a writer works); on PostgreSQL, a pool of one or two
connections with short timeouts.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

PROBE_TIMEOUT_SECONDS = 5


def make_probe_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return create_engine(
            url,
            poolclass=NullPool,
            connect_args={"timeout": PROBE_TIMEOUT_SECONDS},
            hide_parameters=True,
        )
    return create_engine(
        url,
        pool_size=1,
        max_overflow=1,
        pool_timeout=PROBE_TIMEOUT_SECONDS,
        pool_pre_ping=True,
        connect_args={"connect_timeout": PROBE_TIMEOUT_SECONDS},
        hide_parameters=True,
    )


def ping(engine: Engine) -> None:
    """One round trip to the database; raises whatever the driver raises."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
