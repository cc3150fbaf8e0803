"""What every client command shares: a :class:`CliError` ends the command with one line on
standard error and its exit code (never a traceback), and whether there is a terminal to ask
a question on."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from app.cli.errors import CliError

P = ParamSpec("P")
R = TypeVar("R")


def exits_on_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a :class:`CliError` on stderr and exit with its code (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CliError as e:
            typer.echo(f"error: {e.message}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo(
                "interrupted; partial files are kept: run the same command to resume", err=True
            )
            raise typer.Exit(130) from None

    return wrapper


def interactive() -> bool:
    return sys.stdin.isatty()


def confirm_or_refuse(question: str, *, yes: bool, flag: str = "--yes") -> None:
    """Go on when ``yes`` was given or a person at the terminal agrees; without a terminal,
    refuse rather than decide for them."""
    if yes:
        return
    if not interactive():
        raise CliError(f"{question} needs a terminal to ask on, or {flag}", code="needs_yes")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)
