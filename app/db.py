"""Engine, sessions and the request-scoped session dependency.

Services only ``flush()``; :func:`get_session` commits when the request succeeded and rolls
back otherwise, so a multi-step write is one transaction.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.parts import parts_of


def make_engine(url: str, **kwargs: Any) -> Engine:
    # A failed statement's parameters hold API key and secret hash prefixes, emails, client
    # addresses: they never go into an exception message (and from there into a log).
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINTs; let SQLAlchemy emit
            # BEGIN itself (the documented recipe) so nested transactions really nest.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE: take the write lock up front. A deferred transaction that read and
            # then writes fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT, which
            # busy_timeout does not retry) whenever another connection committed in between,
            # e.g. two concurrent downloads both appending to the audit chain. Queuing on
            # busy_timeout instead is what a single-node embedded database should do.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by this user only (SQLite would create it
    under the umask, usually world-readable; its -wal and -shm files take the same mode)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def get_session(request: Request) -> Iterator[Session]:
    session = parts_of(request.app).sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit (or roll back) when the route returns, *before* the response is
# sent. FastAPI's default for yield dependencies ("request") runs the commit after the body
# went out, so a client could see 201 and read stale data (or a failed commit) next request.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
