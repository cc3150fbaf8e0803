"""``weightgate upcoming``: what is about to happen across every model an admin runs — the
next lifts (``GET /v1/embargoes``), what is held or restricted now (``GET /v1/holds``) and
the reminders the server will send (``GET /v1/reminders``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from app.cli.command import exits_on_errors
from app.cli.config import load_config
from app.cli.errors import UsageError
from app.cli.http import ApiClient
from app.cli.moments import instant, relative, stamp
from app.when import WhenError, format_utc, parse_offset

DEFAULT_WITHIN = "30d"
SAFETY_POLICY = "system:safety-policy"  # held_by of a model's automatic safety hold


def window(within: str) -> timedelta:
    """``30d``, ``+2w``, ``36h``: how far ahead to look."""
    text = within.strip()
    try:
        offset = parse_offset(text if text.startswith("+") else "+" + text)
    except WhenError as e:
        raise UsageError(f"--within: {e}") from e
    if offset is None or offset <= timedelta(0):
        raise UsageError(f"--within {within!r}: give a duration such as 7d, 36h or 2w")
    return offset


def lift_line(e: dict[str, Any], now: datetime) -> str:
    at = instant(e["at"])
    notes = []
    if e["state"] == "held":
        by = " by the safety policy" if e.get("held_by") == SAFETY_POLICY else ""
        notes.append(f"held{by}: waits for a resume")
    elif e["state"] == "capped":
        notes.append(f"capped at {e['restricted_tier']}")
    if e["release_status"] == "draft":
        notes.append("draft release")
    note = f"  ({'; '.join(notes)})" if notes else ""
    return (
        f"  {format_utc(at)}  {relative(at, now):<10} {e['model']}@{e['version']} "
        f"{e['component']}: {e['component_tier']} -> {e['tier']}{note}"
    )


def hold_line(h: dict[str, Any], now: datetime) -> str:
    where = f"{h['model']}@{h['version']} {h['component']} ({h['tier']} now)"
    parts = []
    if h["held"]:
        by = " by the safety policy" if h.get("held_by") == SAFETY_POLICY else ""
        parts.append(f"held{by} since {stamp(h['held_at'], now)}: {h['hold_reason']}")
    if h["restricted_tier"]:
        parts.append(
            f"restricted to {h['restricted_tier']} since {stamp(h['restricted_at'], now)}: "
            f"{h['restrict_reason']}"
        )
    waiting = h.get("waiting")
    if waiting:
        at = instant(waiting["at"])
        when = "at once" if at <= now else f"at {stamp(waiting['at'], now)}"
        parts.append(f"a resume opens it to {waiting['tier']} {when}")
    return f"  {where}\n    " + "\n    ".join(parts)


def reminder_line(r: dict[str, Any], now: datetime) -> str:
    due = instant(r["due_at"])
    d = r["data"]
    if r["event"] == "embargo.upcoming":
        what = f"{d['model']}@{d['version']} {d['component']} opens to {d['tier']}"
    elif d.get("kind") == "partner_secret":
        what = f"partner {d['partner']} ({d['client_id']}): client secret expires"
    else:
        what = f"API key {d['name'] or d['prefix']} ({d['prefix']}…) of {d['user']} expires"
    when = "due now" if due <= now else relative(due, now)
    return f"  {format_utc(due)}  {when:<10} {r['event']}: {what} at {stamp(r['at'], now)}"


@exits_on_errors
def upcoming(
    within: Annotated[
        str, typer.Option(help="how far ahead to look: 7d, 36h, 2w")
    ] = DEFAULT_WITHIN,
    model: Annotated[str | None, typer.Option(help="only this model (ns/name)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the API's answers, as JSON")] = False,
) -> None:
    """The next lifts, holds and restrictions, and reminders, across models (admin)."""
    now = datetime.now(UTC)
    until = format_utc((now + window(within)).replace(microsecond=0))
    scope: dict[str, Any] = {"model": model} if model else {}
    with ApiClient(load_config()) as api:
        api.require_key("listing what is upcoming")
        lifts = api.paginate(
            "/v1/embargoes",
            what="listing upcoming lifts",
            params={"when": "upcoming", "until": until, "limit": 1000, **scope},
        )
        holds = api.paginate("/v1/holds", what="listing holds", params={"limit": 1000, **scope})
        reminders = api.paginate(
            "/v1/reminders",
            what="listing reminders",
            params={"until": until, "limit": 1000, **scope},
        )
    if as_json:
        doc = {"until": until, "lifts": lifts, "holds": holds, "reminders": reminders}
        typer.echo(json.dumps(doc, indent=1))
        return
    horizon = f"until {until} ({within})"
    sections = [
        (f"lifts {horizon}:", [lift_line(e, now) for e in lifts]),
        ("held or restricted now:", [hold_line(h, now) for h in holds]),
        (f"reminders {horizon}:", [reminder_line(r, now) for r in reminders]),
    ]
    for title, lines in sections:
        typer.echo(title)
        typer.echo("\n".join(lines) if lines else "  (none)")


def register(app: typer.Typer) -> None:
    """Add ``weightgate upcoming`` to the top-level app."""
    app.command()(upcoming)
