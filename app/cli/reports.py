"""``weightgate report`` (file a safety report on a release you may download) and
``weightgate reports list|show|withdraw`` (your own reports), plus the admins'
``weightgate reports queue|triage|hold``, over the HTTP API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.command import exits_on_errors
from app.cli.config import load_config
from app.cli.errors import UsageError
from app.cli.http import ApiClient
from app.cli.plan import Target

reports_app = typer.Typer(
    help="Safety reports: your own (list, show, withdraw); the triage queue (admin).",
    no_args_is_help=True,
)

CATEGORIES = ("harmful_capability", "security", "privacy", "bias", "license", "other")
SEVERITIES = ("low", "medium", "high", "critical")
MAX_TEXT = 100_000
JsonOpt = Annotated[bool, typer.Option("--json", help="the API's answer, as JSON")]


def read_text(value: str | None, path: str | None, *, what: str) -> str | None:
    """``--what TEXT`` or ``--what-file PATH`` (``-`` for standard input), not both."""
    if value is not None and path is not None:
        raise UsageError(f"give --{what} or --{what}-file, not both")
    if path is None:
        return value
    if path == "-":
        return sys.stdin.read()
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--{what}-file: no file {path}")
    if file.stat().st_size > MAX_TEXT * 4:
        raise UsageError(f"--{what}-file: {path} is larger than a report can hold")
    return file.read_text(encoding="utf-8", errors="replace")


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise UsageError(f"{option} is one of {', '.join(allowed)}")
    return value


def describe(report: dict[str, Any]) -> str:
    parts = report["components"] or ["(whole release)"]
    return (
        f"#{report['id']}  {report['status']:<9}  {report['severity']:<8}  "
        f"{report['category']:<18}  {report['model']}@{report['version']}  {', '.join(parts)}"
    )


def show_lines(report: dict[str, Any]) -> list[str]:
    lines = [describe(report), f"filed {report['created_at']}"]
    if report.get("reporter"):
        lines.append(f"reporter: {report['reporter']} {report.get('reporter_name', '')}".rstrip())
    if report.get("duplicate_of"):
        lines.append(f"duplicate of #{report['duplicate_of']}")
    lines += ["", report["description"]]
    if report.get("evidence"):
        lines += ["", "evidence:", report["evidence"]]
    lines.append("")
    for u in report["updates"]:
        note = f": {u['note']}" if u.get("note") else ""
        by = f" by {u['actor']}" if u.get("actor") else ""
        lines.append(f"{u['at']}  {u['status']}{by}{note}")
    return lines


def _emit(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo("\n".join(show_lines(report)))


@exits_on_errors
def report(
    model: Annotated[str, typer.Argument(help="namespace/name[@version] (default: latest)")],
    severity: Annotated[str, typer.Option(help="low, medium, high or critical")],
    category: Annotated[
        str,
        typer.Option(help="harmful_capability, security, privacy, bias, license or other"),
    ],
    component: Annotated[
        list[str] | None,
        typer.Option("--component", "-c", help="a component the problem is in (repeatable)"),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", "-m")] = None,
    description_file: Annotated[
        str | None, typer.Option(help="read the description from a file ('-': stdin)")
    ] = None,
    evidence: Annotated[str | None, typer.Option(help="prompts, outputs, steps")] = None,
    evidence_file: Annotated[
        str | None, typer.Option(help="read the evidence from a file ('-': stdin)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """File a safety report on a release you may download. Admins triage it; you follow it
    with `weightgate reports show ID`."""
    target = Target.parse(model)
    body = {
        "version": target.version or "main",
        "components": list(component or []),
        "category": _choice(category, CATEGORIES, "--category"),
        "severity": _choice(severity, SEVERITIES, "--severity"),
        "description": read_text(description, description_file, what="description"),
        "evidence": read_text(evidence, evidence_file, what="evidence") or "",
    }
    if not body["description"]:
        raise UsageError("a report needs a description (--description or --description-file)")
    with ApiClient(load_config()) as api:
        api.require_key("filing a safety report")
        out = api.request(
            "POST",
            f"/v1/models/{target.model}/reports",
            json=body,
            what=f"reporting on {target.model}",
            idempotent=False,
        )
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"report #{out['id']} filed ({out['severity']}, {out['category']}); status new")
    typer.echo(f"follow it with: weightgate reports show {out['id']}")


@reports_app.command("list")
@exits_on_errors
def list_reports(
    status: Annotated[list[str] | None, typer.Option(help="only these statuses")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Your reports, newest first, with their status."""
    with ApiClient(load_config()) as api:
        api.require_key("listing your reports")
        rows = api.paginate(
            "/v1/me/reports", what="listing your reports", params={"status": status or []}
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(describe(row))
    if not rows:
        typer.echo("no reports")


@reports_app.command("show")
@exits_on_errors
def show(report_id: Annotated[int, typer.Argument(min=1)], as_json: JsonOpt = False) -> None:
    """One report with its history and the notes admins left."""
    with ApiClient(load_config()) as api:
        api.require_key("reading a report")
        out = api.get(f"/v1/reports/{report_id}", what=f"reading report #{report_id}")
    _emit(out, as_json)


@reports_app.command("withdraw")
@exits_on_errors
def withdraw(
    report_id: Annotated[int, typer.Argument(min=1)],
    note: Annotated[str | None, typer.Option(help="why (admins see it)")] = None,
) -> None:
    """Withdraw your open report: it stops counting towards the model's safety policy."""
    with ApiClient(load_config()) as api:
        api.require_key("withdrawing a report")
        api.request(
            "POST",
            f"/v1/reports/{report_id}/withdraw",
            json={"note": note} if note else None,
            what=f"withdrawing report #{report_id}",
        )
    typer.echo(f"report #{report_id} withdrawn")


@reports_app.command("queue")
@exits_on_errors
def queue(
    model: Annotated[str | None, typer.Option(help="only this model (ns/name)")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="statuses (default: new and triaged)")
    ] = None,
    min_severity: Annotated[str | None, typer.Option(help="at least this severity")] = None,
    older_than_hours: Annotated[int | None, typer.Option(min=0)] = None,
    as_json: JsonOpt = False,
) -> None:
    """The triage queue (admin), oldest first: by default every open report."""
    params: dict[str, Any] = {"status": status or ["new", "triaged"], "limit": 1000}
    if model:
        params["model"] = model
    if min_severity:
        params["min_severity"] = _choice(min_severity, SEVERITIES, "--min-severity")
    if older_than_hours is not None:
        params["older_than_hours"] = older_than_hours
    with ApiClient(load_config()) as api:
        api.require_key("reading the triage queue")
        rows = api.paginate("/v1/reports", what="reading the triage queue", params=params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{describe(row)}  {row['created_at']}  {row['reporter_name']}")
    if not rows:
        typer.echo("the queue is empty")


@reports_app.command("triage")
@exits_on_errors
def triage(
    report_id: Annotated[int, typer.Argument(min=1)],
    status: Annotated[
        str | None, typer.Option(help="triaged, actioned, dismissed or duplicate")
    ] = None,
    note: Annotated[str | None, typer.Option(help="shown to the reporter")] = None,
    duplicate_of: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a report's status and/or leave its reporter a note (admin)."""
    body: dict[str, Any] = {}
    if status is not None:
        body["status"] = _choice(
            status, ("triaged", "actioned", "dismissed", "duplicate"), "--status"
        )
    if note is not None:
        body["note"] = note
    if duplicate_of is not None:
        body["duplicate_of"] = duplicate_of
    with ApiClient(load_config()) as api:
        api.require_key("triaging a report")
        out = api.request(
            "PATCH", f"/v1/reports/{report_id}", json=body, what=f"triaging report #{report_id}"
        )
    _emit(out, as_json)


@reports_app.command("hold")
@exits_on_errors
def hold(
    report_id: Annotated[int, typer.Argument(min=1)],
    component: Annotated[str | None, typer.Option(help="default: the report's only one")] = None,
    reason: Annotated[str | None, typer.Option(help="added to the hold's reason")] = None,
) -> None:
    """Hold a component of the report's release now (admin); resume it with
    `weightgate schedule resume`."""
    body: dict[str, Any] = {}
    if component:
        body["component"] = component
    if reason:
        body["reason"] = reason
    with ApiClient(load_config()) as api:
        api.require_key("holding from a report")
        out = api.request(
            "POST",
            f"/v1/reports/{report_id}/hold",
            json=body,
            what=f"holding from report #{report_id}",
            idempotent=False,
        )
    sched = out["schedule"]
    typer.echo(
        f"{sched['model']}@{sched['version']}/{sched['component']} held: {sched['hold_reason']}"
    )


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.add_typer(reports_app, name="reports")
