"""``weightgate storage gc``: remove stored objects no file refers to (run where the server's
settings are: it uses the server's database and object store). Server modules are imported
lazily."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

storage_app = typer.Typer(help="The object store.", no_args_is_help=True)


@storage_app.command("gc")
def gc(
    min_age_hours: Annotated[
        float,
        typer.Option(
            min=0,
            help="only objects not written for this long: an upload in progress has its "
            "bytes stored before the file is registered",
        ),
    ] = 24.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, remove nothing")] = False,
) -> None:
    """Remove objects that no file of any release refers to (left by deleted or replaced
    draft files, and by uploads that died before registering their bytes), and the staging
    data of uploads that died mid-stream."""
    from app.catalogue.collect import collect
    from app.clock import SystemClock
    from app.db import make_engine, make_sessionmaker
    from app.migrate import upgrade
    from app.settings import get_settings
    from app.storage import StorageError, open_store

    settings = get_settings()
    upgrade("head")
    engine = make_engine(settings.effective_database_url)
    try:
        report = collect(
            make_sessionmaker(engine),
            open_store(settings),
            now=SystemClock().now(),
            min_age=timedelta(hours=min_age_hours),
            dry_run=dry_run,
        )
    except StorageError as e:
        typer.echo(f"error: {e}; objects removed so far are on record", err=True)
        raise typer.Exit(1) from e
    finally:
        engine.dispose()
    verb = "would remove" if dry_run else "removed"
    for c in report.removed:
        typer.echo(f"{verb} {c.sha256} {c.size} bytes{' (no row)' if c.stray else ''}")
    for u in report.uploads:
        size = "" if u.size is None else f" {u.size} bytes"
        typer.echo(f"{verb} abandoned upload {u.name}{size}")
    typer.echo(
        f"{verb} {len(report.removed)} objects, {report.bytes} bytes, and "
        f"{len(report.uploads)} abandoned uploads; kept {report.kept} objects in use again "
        f"or written in the last {min_age_hours:g} h"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.add_typer(storage_app, name="storage")
