"""``weightgate schedule show|set|hold|resume|lift|restrict MODEL[@VERSION] COMPONENT``: an
admin's embargo control from a terminal, over the HTTP API.

Without ``@VERSION`` a command acts on the latest published release; ``--all-releases``
applies it to the component in every release of the model (drafts included), one release
after the other: a release that fails is reported and the others go on. Times are UTC as
the server answers, with how far away they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from app.cli.command import exits_on_errors
from app.cli.config import load_config
from app.cli.errors import CliError, NotFoundError, UsageError
from app.cli.http import ApiClient
from app.cli.moments import instant, relative, stamp
from app.cli.plan import Target
from app.cli.schedule_ops import (
    CEILINGS,
    STAGE_TIERS,
    Where,
    explain_refusal,
    merge,
    parse_changes,
    unchanged,
    versions,
)
from app.when import format_utc

schedule_app = typer.Typer(
    help="Embargo control (admin): read and change component schedules.",
    no_args_is_help=True,
)

ModelArg = Annotated[
    str,
    typer.Argument(help="namespace/name (latest published release) or namespace/name@version"),
]
ComponentArg = Annotated[str, typer.Argument(help="component name, e.g. weights")]
AllReleases = Annotated[
    bool,
    typer.Option("--all-releases", help="act on the component in every release of the model"),
]
# What an action does to one release: the schedule it answers (printed), or None when it
# printed its own note.
Action = Callable[[ApiClient, Where], dict[str, Any] | None]


def render(s: dict[str, Any], now: datetime) -> list[str]:
    """A schedule as the API answers it, for a terminal."""
    nxt = s.get("next")
    ahead = f"next {nxt['tier']} at {stamp(nxt['at'], now)}" if nxt else "nothing ahead"
    lines = [f"{s['model']}@{s['version']} {s['component']}: {s['tier']} now, {ahead}"]
    if s.get("held"):
        lines.append(f"  held since {stamp(s['held_at'], now)}: {s['hold_reason']}")
    if s.get("restricted_tier"):
        lines.append(
            f"  restricted to {s['restricted_tier']} since {stamp(s['restricted_at'], now)}: "
            f"{s['restrict_reason']}"
        )
    for st in s["stages"]:
        at = instant(st["at"])
        lines.append(f"  {st['tier']:<9} {format_utc(at)}  {st['state']:<8} {relative(at, now)}")
    if not s["stages"]:
        lines.append("  no stages: internal until scheduled")
    return lines


def show_result(verb: str, s: dict[str, Any]) -> None:
    lines = render(s, datetime.now(UTC))
    if verb:
        lines[0] = f"{verb} {lines[0]}"
    typer.echo("\n".join(lines))


def for_each_release(
    model: str, component: str, *, all_releases: bool, verb: str, action: Action
) -> list[dict[str, Any]]:
    """Run ``action`` on the component of each release the command names; returns what
    they answered. With one release its error ends the command as is; with several, each
    failure is printed and the command fails at the end."""
    target = Target.parse(model)
    done: list[dict[str, Any]] = []
    failed: list[CliError] = []
    missing: list[str] = []
    with ApiClient(load_config()) as api:
        api.require_key(f"{verb} a schedule")
        found = versions(api, target, all_releases=all_releases)
        for version in found:
            where = Where(target.model, version, component)
            try:
                out = action(api, where)
            except CliError as e:
                if all_releases and e.code == "component_not_found":
                    missing.append(version)
                    continue
                if len(found) == 1:
                    raise
                typer.echo(f"error: {where.label}: {e.message}", err=True)
                failed.append(e)
                continue
            if out is not None:
                show_result(verb, out)
                done.append(out)
    if missing and len(missing) == len(found):
        raise NotFoundError(
            f"no release of {target.model} has a component {component!r}",
            code="component_not_found",
        )
    if missing:
        typer.echo(f"note: no component {component} in {', '.join(missing)}", err=True)
    if failed:
        raise CliError(
            f"{len(failed)} of {len(found)} releases failed (see above)", code=failed[0].code
        )
    return done


@schedule_app.command("show")
@exits_on_errors
def show(
    model: ModelArg,
    component: ComponentArg,
    all_releases: AllReleases = False,
    as_json: Annotated[bool, typer.Option("--json", help="the API's answers, as JSON")] = False,
) -> None:
    """The component's tier now, its stages and their state, hold and restriction."""

    def read(api: ApiClient, where: Where) -> dict[str, Any] | None:
        out: dict[str, Any] = api.get(where.url, what=f"reading the schedule of {where.label}")
        if as_json:
            answers.append(out)
            return None
        return out

    answers: list[dict[str, Any]] = []
    for_each_release(model, component, all_releases=all_releases, verb="", action=read)
    if as_json:
        typer.echo(json.dumps(answers if all_releases else answers[0], indent=1))


@schedule_app.command("set")
@exits_on_errors
def set_stages(
    model: ModelArg,
    component: ComponentArg,
    stages: Annotated[
        list[str] | None,
        typer.Argument(
            help="the stages to change or add, TIER@WHEN (WHEN: ISO 8601 with a zone, or "
            "relative: +2h, +30d, now); stages not named are kept",
            show_default=False,
        ),
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="remove the stage of this tier")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="why, for the audit log")] = None,
    all_releases: AllReleases = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the new schedule, change nothing")
    ] = False,
) -> None:
    """Reschedule: move, add or --drop stages that have not happened; the rest is kept."""
    # Relative times count from this second, whole: schedules read better without
    # microseconds, and every release of --all-releases gets the same instant.
    now = datetime.now(UTC).replace(microsecond=0)
    changes = parse_changes(stages or [], now=now)
    drops = list(drop or [])
    for tier in drops:
        if tier not in STAGE_TIERS or tier in (c.tier for c in changes):
            raise UsageError(
                f"--drop {tier}: give a tier ({', '.join(STAGE_TIERS)}) not also being set",
                code="bad_drop",
            )
    if not changes and not drops:
        raise UsageError("nothing to change: give TIER@WHEN stages or --drop TIER")
    for c in changes:
        typer.echo(f"stage {c.describe()}", err=True)

    def reschedule(api: ApiClient, where: Where) -> dict[str, Any] | None:
        current = api.get(where.url, what=f"reading the schedule of {where.label}")
        wanted = merge(current, changes, drops, now=now)
        if unchanged(current, wanted):
            typer.echo(f"{where.label}: unchanged")
            return None
        if dry_run:
            stages_text = ", ".join(f"{s['tier']} at {s['at']}" for s in wanted)
            typer.echo(f"{where.label}: would become {stages_text}")
            return None
        out: dict[str, Any] = api.request(
            "PUT",
            where.url,
            json={"schedule": wanted, "reason": reason},
            what=f"rescheduling {where.label}",
        )
        return out

    for_each_release(
        model, component, all_releases=all_releases, verb="rescheduled", action=reschedule
    )


def post_action(
    path: str, body: dict[str, Any] | None, *, doing: str, already: str | None = None
) -> Action:
    """An action POSTing ``body`` to ``<schedule>/<path>``. A 409 with the code ``already``
    (holding what is held, resuming what is not) is a note, not a failure: running the
    command again is harmless."""

    def act(api: ApiClient, where: Where) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = api.request(
                "POST",
                f"{where.url}/{path}",
                json=body,
                what=f"{doing} {where.label}",
                idempotent=False,
            )
        except CliError as e:
            if already is not None and e.code == already:
                typer.echo(f"{where.label}: {e.message.split(': ', 1)[-1]}")
                return None
            raise explain_refusal(api, where, e, action=path) from None
        return out

    return act


ReasonOpt = Annotated[str | None, typer.Option(help="why, for the audit log")]
RequiredReason = Annotated[
    str, typer.Option(help="why (required; recorded in the audit log and sent to webhooks)")
]


@schedule_app.command("hold")
@exits_on_errors
def hold(
    model: ModelArg,
    component: ComponentArg,
    reason: RequiredReason,
    all_releases: AllReleases = False,
) -> None:
    """Freeze the schedule now: no later stage applies until resumed."""
    action = post_action("hold", {"reason": reason}, doing="holding", already="already_held")
    for_each_release(model, component, all_releases=all_releases, verb="held", action=action)


@schedule_app.command("resume")
@exits_on_errors
def resume(
    model: ModelArg,
    component: ComponentArg,
    reason: ReasonOpt = None,
    all_releases: AllReleases = False,
) -> None:
    """End a hold and any restriction: stages whose time passed take effect at once."""
    action = post_action("resume", {"reason": reason}, doing="resuming", already="not_held")
    for_each_release(model, component, all_releases=all_releases, verb="resumed", action=action)


@schedule_app.command("lift")
@exits_on_errors
def lift(
    model: ModelArg,
    component: ComponentArg,
    tier: Annotated[
        str | None,
        typer.Option(
            help=f"open to this tier now ({', '.join(STAGE_TIERS)}); default: the next stage's"
        ),
    ] = None,
    reason: ReasonOpt = None,
    all_releases: AllReleases = False,
) -> None:
    """Open the component now, to the next stage's tier or --tier."""
    if tier is not None and tier not in STAGE_TIERS:
        raise UsageError(f"--tier is one of {', '.join(STAGE_TIERS)}")
    body = {"tier": tier, "reason": reason}
    action = post_action("lift", body, doing="lifting")
    for_each_release(model, component, all_releases=all_releases, verb="lifted", action=action)


@schedule_app.command("restrict")
@exits_on_errors
def restrict(
    model: ModelArg,
    component: ComponentArg,
    tier: Annotated[str, typer.Option(help=f"the ceiling: {', '.join(CEILINGS)}")],
    reason: RequiredReason,
    all_releases: AllReleases = False,
) -> None:
    """Emergency: cap the component at --tier until resumed; revokes the tokens it closes."""
    if tier not in CEILINGS:
        raise UsageError(f"--tier is one of {', '.join(CEILINGS)} (to end a restriction: resume)")
    action = post_action("restrict", {"tier": tier, "reason": reason}, doing="restricting")
    done = for_each_release(
        model, component, all_releases=all_releases, verb="restricted", action=action
    )
    for out in done:
        typer.echo(
            f"{out['model']}@{out['version']} {out['component']}: "
            f"{out['tokens_revoked']} download token(s) revoked"
        )


def register(app: typer.Typer) -> None:
    """Add ``weightgate schedule ...`` to the top-level app."""
    app.add_typer(schedule_app, name="schedule")
