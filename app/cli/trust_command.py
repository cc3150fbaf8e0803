"""``weightgate trust add|list|remove``: pin the release-signing keys that
``weightgate verify`` checks signatures against (:mod:`app.cli.trust`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.command import exits_on_errors
from app.cli.errors import CliError
from app.cli.trust import TrustStore, pin_file, pin_server

trust_app = typer.Typer(help="Release-signing keys you trust (for weightgate verify).")


@exits_on_errors
def add(
    source: Annotated[
        str, typer.Argument(help="a server URL (https://weights.example) or a PEM public key file")
    ],
) -> None:
    """Pin a server's published release keys, or a public key file you received."""
    store = TrustStore.load()
    if source.startswith(("http://", "https://")):
        pinned = pin_server(store, source)
    elif Path(source).is_file():
        pinned = pin_file(store, Path(source))
    else:
        raise CliError(f"{source} is neither an http(s) URL nor a file", code="bad_source")
    where = store.save()
    for key, new in pinned:
        period = ""
        if key.not_before or key.not_after:
            period = f" signing {key.not_before or '…'} to {key.not_after or 'now'}"
        typer.echo(f"{'pinned ' if new else 'already'}  {key.key_id}{period}")
    typer.echo(
        f"{len(pinned)} key(s) from {source} in {where}; compare the ids above with the ones "
        "your lab publishes"
    )
    for r in store.revoked:
        if r.get("source") == source.rstrip("/"):
            typer.echo(f"revoked  {r['model']}@{r['version']}: {r.get('reason')}")


@exits_on_errors
def list_keys() -> None:
    """Show the pinned keys and known revocations."""
    store = TrustStore.load()
    if not store.keys:
        typer.echo("no release keys pinned: weightgate trust add <server or key file>")
    for k in store.keys:
        typer.echo(f"{k.key_id}  from {k.source}  pinned {k.pinned_at}")
    for r in store.revoked:
        typer.echo(
            f"revoked  {r['model']}@{r['version']} at {r.get('revoked_at')}: {r.get('reason')}"
        )


@exits_on_errors
def remove(
    key_id: Annotated[str, typer.Argument(help="a key id, or a unique prefix of one")],
) -> None:
    """Stop trusting a key."""
    store = TrustStore.load()
    matching = [k for k in store.keys if k.key_id.startswith(key_id)]
    if len(matching) != 1:
        raise CliError(
            f"{len(matching)} pinned keys start with {key_id!r}; give one key id", code="bad_key"
        )
    store.remove(matching[0].key_id)
    store.save()
    typer.echo(f"removed  {matching[0].key_id}")


trust_app.command()(add)
trust_app.command("list")(list_keys)
trust_app.command()(remove)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.add_typer(trust_app, name="trust")
