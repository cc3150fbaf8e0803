"""Shared fixtures: a migrated database per run (SQLite or PostgreSQL), a transaction per
test, a fixed clock, object stores (filesystem, and S3 on moto's HTTP server), the app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from app.clock import FixedClock
from app.db import make_engine
from app.main import create_app
from app.settings import Settings
from app.storage import ObjectStore
from app.storage.filesystem import FilesystemStore
from app.storage.s3 import S3Store
from tests.deploy.docker import docker_engine_answers
from tests.factories.principals import make_user
from tests.fixtures.databases import backend, fresh_database
from tests.fixtures.servers import AWS_TEST_ENV, moto_server

for _k, _v in AWS_TEST_ENV.items():
    os.environ.setdefault(_k, _v)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# What a test asks for when it touches the suite's database (directly or through the app).
DATABASE_FIXTURES = {"db_url", "engine", "connection", "session_factory", "db", "app", "client"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that make their own database of a fixed kind give the same result in both
    passes; run them once, in the PostgreSQL pass, instead of twice. Tests of code that only
    runs on PostgreSQL have nothing to test on SQLite. Both are deselected (not skipped) on
    SQLite, and the PostgreSQL pass fails if any of them fails. The other way round, tests that
    never open a database (``no_database``: pure functions, file formats, the object stores,
    the lint contracts) run once, in the SQLite pass; one that asks for a database fixture is
    an error, so the marker cannot hide a backend difference.

    Tests that need a Docker engine are deselected where none answers, except in CI
    (``CI=true``), whose .ci/run installs and starts one: there they run, and fail if the
    engine is missing."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    sqlite = backend() == "sqlite"
    no_docker: bool | None = None
    for item in items:
        postgresql_only = item.get_closest_marker("own_database") or item.get_closest_marker(
            "postgresql"
        )
        once_on_sqlite = item.get_closest_marker("no_database") is not None
        if once_on_sqlite and DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid} is marked no_database but uses a database")
        needs_docker = item.get_closest_marker("docker") is not None
        if needs_docker and no_docker is None:
            no_docker = os.environ.get("CI") != "true" and not docker_engine_answers()
        skip_here = (sqlite and postgresql_only) or (not sqlite and once_on_sqlite)
        (drop if skip_here or (needs_docker and no_docker) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header() -> str:
    return f"weightgate test database backend: {backend()}"


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db"), label="suite") as url:
        yield url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """One connection per test inside a transaction that is rolled back at the end."""
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    # Sessions commit to savepoints inside the test's transaction.
    return sessionmaker(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def make_s3_store(endpoint: str, **kw: int) -> S3Store:
    bucket = f"wg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return S3Store(
        bucket=bucket,
        prefix="objects",
        endpoint_url=endpoint,
        region="us-east-1",
        path_style=True,
        **kw,
    )


@pytest.fixture(params=["filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The object store; parametrize with ``indirect=True`` over "filesystem"/"s3"."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        # Small multipart sizes so tests cross the multipart path with a few MiB.
        return make_s3_store(
            endpoint, multipart_threshold=5 * 1024 * 1024, multipart_chunk=5 * 1024 * 1024
        )
    return FilesystemStore(tmp_path / "objects")


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        database_url=db_url,
        scheduler_enabled=False,
        _env_file=None,
    )


@pytest.fixture
def app(
    settings: Settings,
    clock: FixedClock,
    store: ObjectStore,
    engine: Engine,
    session_factory: sessionmaker[Session],
) -> FastAPI:
    return create_app(
        settings,
        clock=clock,
        store=store,
        engine=engine,
        sessions=session_factory,
        run_background=False,
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=True) as c:
        yield c


@pytest.fixture
def admin_key(db: Session, clock: FixedClock) -> str:
    _, key = make_user(db, clock, role="admin", email="admin@example.org")
    return key


@pytest.fixture
def admin_headers(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}
