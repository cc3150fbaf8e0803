"""The ``weightgate`` command: server operations and the researchers' client."""

from __future__ import annotations

import typer

from app.cli import (
    access_requests,
    keys,
    publish,
    reports,
    researcher,
    schedule,
    server,
    storage,
    upcoming,
)

app = typer.Typer(
    name="weightgate",
    help="weightgate: staged model-weight distribution (server and client).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold API keys and tokens
)
server.register(app)
keys.register(app)
storage.register(app)
publish.register(app)
researcher.register(app)
schedule.register(app)
access_requests.register(app)
upcoming.register(app)
reports.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
