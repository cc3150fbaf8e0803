"""``weightgate keys``: rotate and list the token signing keys (run on the server's machine, or
wherever the keys directory is mounted). Server modules are imported lazily."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

keys_app = typer.Typer(help="Token signing keys (ES256).", no_args_is_help=True)


def _when(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else "-"


@keys_app.command("rotate")
def rotate(
    activate_in: Annotated[
        int,
        typer.Option(
            min=0,
            help="seconds before the new key starts signing; with several replicas use at "
            "least WEIGHTGATE_KEYS_RELOAD_SECONDS so every replica knows it first",
        ),
    ] = 0,
) -> None:
    """Create a new signing key; delete keys whose last token has expired."""
    from app.clock import SystemClock
    from app.settings import get_settings
    from app.tokens.keys import KeyConfigError
    from app.tokens.keys import rotate as rotate_keys

    settings = get_settings()
    try:
        key, removed = rotate_keys(settings, now=SystemClock().now(), activate_in=activate_in)
    except KeyConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"new key {key.kid} ({key.source}) signs from {_when(key.active_from)}")
    for name in removed:
        typer.echo(f"removed expired key file {name}")


@keys_app.command("list")
def list_keys() -> None:
    """Show every configured key: signing, verifying until when, or expired."""
    from app.clock import SystemClock
    from app.settings import get_settings
    from app.tokens.keys import KeyConfigError, KeyDirectory, KeySet, describe, retention_for
    from app.tokens.keys import keys_from_env as env_keys

    settings = get_settings()
    retention = retention_for(settings)
    try:
        if settings.signing_key_pem:
            keyset = KeySet(static=env_keys(settings.signing_key_pem), retention=retention)
        else:
            directory = KeyDirectory(settings.effective_keys_dir)
            keyset = KeySet(directory=directory, retention=retention)
    except KeyConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    now = SystemClock().now()
    rows = describe(keyset.statuses(now))
    if not rows:
        typer.echo("no keys (the server generates one on first start outside production)")
        return
    for row in rows:
        state = "signing" if row["signing"] else "verifying" if row["verifying"] else "expired"
        if row["active_from"] is not None and row["active_from"] > now:
            state = "pending"
        typer.echo(
            f"{row['kid']}  {state:9}  source={row['source']}  "
            f"active_from={_when(row['active_from'])}  verify_until={_when(row['verify_until'])}"
        )


release_keys_app = typer.Typer(
    help="Release-signing keys (ECDSA P-256; docs/signing.md).", no_args_is_help=True
)


@release_keys_app.command("rotate")
def rotate_release_key(
    activate_in: Annotated[
        int, typer.Option(min=0, help="seconds before the new key starts signing releases")
    ] = 0,
) -> None:
    """Create a new release-signing key. Earlier keys stop signing but stay published, so
    every release they signed keeps verifying."""
    from app.clock import SystemClock
    from app.settings import get_settings
    from app.signing.keys import rotate as rotate_keys
    from app.tokens.keys import KeyConfigError

    try:
        key, keys = rotate_keys(get_settings(), now=SystemClock().now(), activate_in=activate_in)
    except KeyConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"new release key {key.key_id} ({key.source}) signs from {_when(key.not_before)}")
    typer.echo(f"{len(keys)} release key(s) published at /.well-known/release-keys.json")


@release_keys_app.command("list")
def list_release_keys() -> None:
    """Show every release key: which one signs, and the period each one signed in."""
    from app.clock import SystemClock
    from app.settings import get_settings
    from app.signing.loading import load_release_keys
    from app.tokens.keys import KeyConfigError

    now = SystemClock().now()
    try:
        keyset = load_release_keys(get_settings(), now=now, generate=False, record_key=False)
        signer = keyset.signing_key(now)
    except KeyConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    for k in keyset.listed():
        state = (
            "signing"
            if k.key_id == signer.key_id
            else "retired"
            if k.signer is None
            else "verifying"
        )
        if k.not_before is not None and k.not_before > now:
            state = "pending"
        typer.echo(
            f"{k.key_id}  {state:9}  source={k.source}  "
            f"signs {_when(k.not_before)} .. {_when(k.not_after)}"
        )


@release_keys_app.command("retire")
def retire_release_key(
    key_id: Annotated[str, typer.Argument(help="the key id (or a unique prefix)")],
) -> None:
    """Delete a rotated-out key's private half and keep its public half published."""
    from app.settings import get_settings
    from app.signing.keys import retire
    from app.tokens.keys import KeyConfigError

    try:
        key = retire(get_settings(), key_id)
    except KeyConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"retired {key.key_id}: its private key is deleted, its signatures still verify")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(release_keys_app, name="release-keys")
