"""weightgate CLI: the researchers' commands (login, request-access, access, ls, download,
verify). Thin: parse options, call the client modules, print; exit codes come from
:mod:`app.cli.errors`. Nothing here imports the server package."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli import access as access_mod
from app.cli.command import exits_on_errors, interactive
from app.cli.config import ClientConfig, load_config, save_config
from app.cli.download import MIN_SPLIT
from app.cli.download_run import Options, RunResult, download_release
from app.cli.errors import EXIT_INTEGRITY, CliError
from app.cli.http import ApiClient
from app.cli.moments import instant, relative, stamp
from app.cli.plan import Plan, Target, fetch_plan
from app.cli.progress import human_size
from app.cli.verify import verify_tree


@exits_on_errors
def login(
    url: Annotated[
        str | None, typer.Option(help="server URL, e.g. https://weights.example")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="API key (wg_…); asked for without echo when omitted"),
    ] = None,
) -> None:
    """Store the server URL and your API key (0600, under your config directory)."""
    current = load_config()
    url = (url or typer.prompt("Server URL", default=current.url)).rstrip("/")
    key = token or typer.prompt("API key", hide_input=True)
    with ApiClient(ClientConfig(url=url, token=key)) as api:
        me = api.get("/v1/me", what=f"checking the key against {url}")
    path = save_config(url, key)
    who = me.get("email") or me.get("name")
    typer.echo(f"logged in to {url} as {who} ({me.get('role') or me.get('kind')}); saved in {path}")


@exits_on_errors
def request_access(
    model: Annotated[str, typer.Argument(help="namespace/name")],
    answer: Annotated[
        list[str] | None, typer.Option("--answer", "-a", help="field=value (repeatable)")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="accept the license, ask nothing")
    ] = False,
) -> None:
    """Ask for access to a model: shows its license and request fields first."""
    target = Target.parse(model)
    with ApiClient(load_config()) as api:
        api.require_key("requesting access")
        terms = access_mod.read_terms(api, target)
        typer.echo(f"{terms.display_name} ({terms.model}) license, sha256 {terms.license_sha256}:")
        typer.echo(terms.license or "(no license text)")
        typer.echo("")
        ask = (
            None
            if yes or not interactive()
            else (lambda label: str(typer.prompt(label, default="")))
        )
        answers = access_mod.collect_answers(
            terms, access_mod.parse_answers(answer or []), prompt=ask
        )
        if not yes:
            if not interactive():
                raise CliError(
                    "accepting a license needs a terminal to ask on, or --yes", code="needs_yes"
                )
            if not typer.confirm(f"Do you accept the license of {terms.model}?", default=False):
                raise typer.Exit(1)
        out = access_mod.submit_request(api, terms, answers)
    if out["status"] == "approved":
        typer.echo(f"request #{out['id']} approved: you can download {terms.model} now")
    else:
        typer.echo(f"request #{out['id']} is {out['status']}; `weightgate access` shows its state")


@exits_on_errors
def access(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Your access requests and the models you hold a grant for."""
    with ApiClient(load_config()) as api:
        api.require_key("listing your access")
        view = access_mod.overview(api)
    if as_json:
        typer.echo(json.dumps({"requests": view.requests, "grants": view.granted}, indent=1))
        return
    typer.echo("access requests:")
    for r in view.requests or []:
        decided = f", decided {r['decided_at']}" if r.get("decided_at") else ""
        typer.echo(
            f"  #{r['id']:<5} {r['model']:<40} {r['status']:<9} asked {r['created_at']}{decided}"
        )
    if not view.requests:
        typer.echo("  (none)")
    typer.echo("grants:" + (f" ({view.clearance_note})" if view.clearance_note else ""))
    for m in view.granted:
        typer.echo(f"  {m}")
    if not view.granted:
        typer.echo("  (none)")


def _print_plan(plan: Plan) -> None:
    typer.echo(
        f"{plan.model}@{plan.version}  revision {plan.revision}  your clearance: {plan.clearance}"
    )
    typer.echo(f"  {'component':<20} {'tier':<9} {'you':<4} {'next stage':<32} opens to you")
    for c in sorted(plan.components, key=lambda c: c["name"]):
        nxt = c.get("next")
        stage = f"{nxt['tier']} at {nxt['at']}" if nxt else ("held" if c.get("held") else "-")
        you = "yes" if c["downloadable"] else "no"
        opens = "now" if c["downloadable"] else (c.get("opens_to_you_at") or "not scheduled")
        typer.echo(f"  {c['name']:<20} {c['tier']:<9} {you:<4} {stage:<32} {opens}")
    total = sum(f.size for f in plan.files)
    typer.echo(f"files you can download now: {len(plan.files)} ({human_size(total)})")
    for f in plan.files:
        typer.echo(f"  {f.path}  {human_size(f.size)}  [{f.component}]")


def _print_outlook(outlook: access_mod.GrantOutlook) -> None:
    now = datetime.now(UTC)
    ask = f"weightgate request-access {outlook.model}"
    if not outlook.opens:
        typer.echo(
            f"an approved access request ({ask}) would open nothing sooner than it opens to "
            "everyone"
        )
    else:
        how = " (approved at once: the model approves requests by itself)"
        typer.echo(f"with an approved access request ({ask}){how if outlook.auto_approve else ''}:")
        for name, at in outlook.opens:
            typer.echo(f"  {name:<20} {'now' if at is None else 'from ' + stamp(at, now)}")
    for name in outlook.never:
        typer.echo(f"  {name:<20} not scheduled to open to approved researchers yet")
    if outlook.pending is not None:
        asked = relative(instant(outlook.pending["created_at"]), now)
        typer.echo(f"your request #{outlook.pending['id']} is pending (asked {asked})")
    elif not outlook.signed_in and outlook.opens:
        typer.echo("requesting access needs an account: weightgate login first")


@exits_on_errors
def ls(
    model: Annotated[str, typer.Argument(help="namespace/name or namespace/name@version")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """What you can download now, what opens to you when, and what an approved access
    request would open."""
    target = Target.parse(model)
    with ApiClient(load_config()) as api:
        plan = fetch_plan(api, target)
        outlook = (
            access_mod.grant_outlook(api, plan.model, plan.components)
            if plan.clearance == "open" and not as_json
            else None
        )
    if as_json:
        doc: dict[str, Any] = {
            "model": plan.model,
            "version": plan.version,
            "revision": plan.revision,
            "clearance": plan.clearance,
            "components": plan.components,
            "files": [f.__dict__ for f in plan.files],
        }
        typer.echo(json.dumps(doc, indent=1))
        return
    _print_plan(plan)
    if outlook is not None:
        _print_outlook(outlook)


def _summary(result: RunResult, root: Path) -> str:
    got = sum(f.transferred for f in result.fetched)
    resumed = sum(1 for f in result.fetched if f.resumed_from)
    parts = [
        f"{len(result.fetched)} downloaded ({human_size(got)}"
        + (f", {resumed} resumed" if resumed else "")
        + ")",
        f"{len(result.skipped)} already complete",
    ]
    if result.failed:
        parts.append(f"{len(result.failed)} failed")
    if result.token_renewals:
        parts.append(f"token renewed {result.token_renewals}x")
    return f"{result.plan.model}@{result.plan.version}: " + ", ".join(parts) + f" -> {root}"


@exits_on_errors
def download(
    model: Annotated[
        str, typer.Argument(help="namespace/name (latest release) or namespace/name@version")
    ],
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="only this component (repeatable)")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", "-i", help="only paths matching this glob (repeatable)"),
    ] = None,
    to: Annotated[Path | None, typer.Option(help="target directory (default: ./<name>)")] = None,
    parallel: Annotated[
        int,
        typer.Option(min=1, max=32, help="connections at once (files, or ranges of a large file)"),
    ] = 4,
    min_split_mib: Annotated[
        int,
        typer.Option(
            "--min-split-mib",
            min=1,
            help="fetch a file over several connections only in ranges of at least this size",
        ),
    ] = MIN_SPLIT // (1024 * 1024),
    retries: Annotated[
        int, typer.Option(min=0, max=100, help="retries per file without progress")
    ] = 5,
    plain: Annotated[
        bool, typer.Option("--plain", help="plain lines instead of progress bars")
    ] = False,
) -> None:
    """Download a release: resumable, verified (SHA-256), in parallel."""
    target = Target.parse(model)
    root = to or Path(target.name)
    opts = Options(
        root=root,
        components=component or None,
        includes=include or None,
        parallel=parallel,
        retries=retries,
        plain=True if plain else None,
        min_split=min_split_mib * 1024 * 1024,
    )
    with ApiClient(load_config()) as api:
        result = download_release(api, target, opts)
    for c in result.plan.closed:
        typer.echo(f"not downloaded: {c.explain(result.plan.model)}")
    typer.echo(_summary(result, root))
    error = result.first_error()
    if error is not None:
        raise error
    refusal = result.plan.refusal(explicit=bool(component))
    if refusal is not None:
        raise refusal


@exits_on_errors
def verify(
    directory: Annotated[Path, typer.Argument(help="a directory written by weightgate download")],
    offline: Annotated[
        bool, typer.Option("--offline", help="use the manifest recorded at download time")
    ] = False,
) -> None:
    """Re-check every downloaded file's size and SHA-256 against the release manifest."""
    if offline:
        report = verify_tree(directory, api=None)
    else:
        with ApiClient(load_config()) as api:
            report = verify_tree(directory, api=api)
    for rel in report.missing:
        typer.echo(f"missing   {rel}")
    for rel in report.mismatched:
        typer.echo(f"MISMATCH  {rel}")
    for rel in report.unlisted:
        typer.echo(
            f"note      {rel}: not in the manifest as you see it now; checked the recorded hash"
        )
    typer.echo(
        f"{report.model}@{report.version} ({report.revision}): {len(report.ok)} ok, "
        f"{len(report.mismatched)} mismatched, {len(report.missing)} missing"
    )
    if not report.good:
        raise typer.Exit(EXIT_INTEGRITY)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command()(login)
    app.command("request-access")(request_access)
    app.command()(access)
    app.command()(ls)
    app.command()(download)
    app.command()(verify)
