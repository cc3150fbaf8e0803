"""Server-side commands: serve, migrate, admin. These import the server package lazily so the
client commands stay light."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

admin_app = typer.Typer(help="Administration from the server's own machine.", no_args_is_help=True)


def migrate(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="change nothing; exit 1 unless the schema includes the code's head revision "
            "(at it, or newer after a rollback)",
        ),
    ] = False,
    wait: Annotated[
        int,
        typer.Option(
            min=0,
            help="with --check: keep checking for up to this many seconds (an init container "
            "waits on this while the migration job runs, instead of crash-looping)",
        ),
    ] = 0,
) -> None:
    """Bring the database schema up to date (safe to run from several replicas at once)."""
    from app.migrate import schema_state, upgrade, wait_until_compatible

    if check:

        def report(reason: str) -> None:
            if wait:
                typer.echo(f"waiting: {reason}", err=True)

        state = wait_until_compatible(timeout=wait, report=report)
        if state is None or not state.compatible:
            reason = state.describe() if state else "database unreachable"
            typer.echo(reason, err=True)
            raise typer.Exit(1)
        typer.echo(state.describe())
        return
    upgrade(revision)
    state = schema_state()
    typer.echo(state.describe() if state.newer else f"database migrated to {revision}")


def _prepare_multiprocess_metrics(data_dir: Path) -> None:
    """With several workers each process keeps its own counters; prometheus_client's
    multiprocess mode (files in a shared directory) lets any worker answer /metrics for all.
    The directory is emptied at start: files left by a previous run would be counted again."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = (data_dir / "prometheus-multiproc").resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # inherited by the workers


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="run migrations before serving")
    ] = True,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="WEIGHTGATE_FORWARDED_ALLOW_IPS",
            help="proxies whose X-Forwarded-For/-Proto are trusted (comma-separated IPs or "
            "CIDRs, '*' for any: only when nothing but the proxy can reach the server)",
        ),
    ] = "127.0.0.1",
    graceful_timeout: Annotated[
        int,
        typer.Option(min=0, help="seconds in-flight requests (uploads) get to finish on SIGTERM"),
    ] = 30,
) -> None:
    """Run the HTTP server (uvicorn)."""
    import uvicorn

    from app.http_server import BoundedHttpToolsProtocol
    from app.migrate import upgrade
    from app.settings import UnsafeConfiguration, get_settings, running_in_container, served_url

    settings = get_settings()
    try:
        settings.check_production(in_container=running_in_container())
    except UnsafeConfiguration as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if settings.public_url is None:
        # Download URLs must name the port really served (make run PORT=18100), in this
        # process and in every worker: they read their settings from the environment.
        os.environ["WEIGHTGATE_PUBLIC_URL"] = served_url(host, port)
        get_settings.cache_clear()
        settings = get_settings()
    typer.echo(f"public URL (download links): {settings.effective_public_url}", err=True)
    if settings.is_sqlite and workers > 1:
        typer.echo(
            "SQLite is single-process: use PostgreSQL (WEIGHTGATE_DATABASE_URL) to run "
            "several workers",
            err=True,
        )
        raise typer.Exit(2)
    if migrate_first:
        upgrade("head")
    if workers > 1:
        _prepare_multiprocess_metrics(settings.data_dir)
    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        http=BoundedHttpToolsProtocol,  # httptools, with request heads bounded
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=graceful_timeout or None,
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,
    )


@contextmanager
def _admin_session() -> Iterator[Session]:
    """A session on the configured database, brought up to date first; committed when the
    block ends without error. An ``AppError`` is printed and exits 1."""
    from app.db import make_engine, make_sessionmaker
    from app.errors import AppError
    from app.migrate import upgrade
    from app.settings import get_settings

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    upgrade("head")
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
            session.commit()
    except AppError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(1) from e
    finally:
        engine.dispose()


@admin_app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="the user's email")],
    role: Annotated[str, typer.Option(help="admin or researcher")] = "researcher",
    name: Annotated[str, typer.Option(help="display name")] = "",
) -> None:
    """Create a user and print a new API key (alone on the last line)."""
    from app.access.users import create_user_with_key
    from app.clock import SystemClock

    with _admin_session() as session:
        user, key = create_user_with_key(
            session, email=email, role=role, name=name, actor="system:cli", now=SystemClock().now()
        )
    typer.echo(f"created {user.role} {user.email} (id {user.id}); API key (shown once):")
    typer.echo(key)


@admin_app.command("update-user")
def update_user(
    email: Annotated[str, typer.Option(help="the user's email")],
    role: Annotated[str | None, typer.Option(help="admin or researcher")] = None,
    disable: Annotated[
        bool | None,
        typer.Option(
            "--disable/--enable",
            help="disable (API keys refused, download tokens revoked) or re-enable",
        ),
    ] = None,
) -> None:
    """Change a user's role, or disable or re-enable them: the same rules as
    ``PATCH /v1/users/{id}`` (never the last active admin), for when no admin key works."""
    from pydantic import ValidationError

    from app.access import repository as repo
    from app.access.schemas import UserPatch
    from app.access.users import update_user as change
    from app.clock import SystemClock
    from app.errors import NotFound

    try:
        body = UserPatch.model_validate({"role": role, "disabled": disable})
    except ValidationError as e:
        typer.echo(f"error: {e.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from e
    with _admin_session() as session:
        found = repo.user_by_email(session, email.strip())
        if found is None:
            raise NotFound(f"no user with email {email}", code="user_not_found")
        now = SystemClock().now()
        user = change(session, user_id=found.id, body=body, actor="system:cli", now=now)
        state = "disabled" if user.disabled_at is not None else "active"
    typer.echo(f"{user.email} (id {user.id}): {user.role}, {state}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(migrate)
    app.add_typer(admin_app, name="admin")
