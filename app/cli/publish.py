"""``weightgate publish DIR``: turn a folder into a published release in one command.

It creates the model if it does not exist (``--no-create-model`` to require it), creates
the release as a draft, creates the components with their schedules, uploads every file
(in parallel, streamed from disk, SHA-256 declared so the server verifies it), then
publishes and prints the revision id alone on the last line of standard output.

Re-running the same command after a failure resumes the draft: files the draft already
holds with the same bytes are not sent again, and stages given relative to now (``+2h``)
keep the times the first run fixed. A published release is never changed.

Exit codes: 0 published (or uploaded, with ``--no-publish``); 1 the server refused (its
problem ``code`` and ``detail`` are printed); 2 bad options or folder; 3 the API key is
missing, unknown or not an admin's; 4 the server could not be reached.

Client side only: talks HTTP to the server and imports nothing of it but the client
configuration (``app.cli.config``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from app.cli.config import load_config
from app.cli.publish_api import AdminApi, ApiError, Unreachable
from app.cli.publish_plan import (
    ComponentSpec,
    Plan,
    PlanError,
    Stage,
    make_plan,
    parse_components,
    parse_schedules,
)
from app.cli.publish_upload import make_view, upload_all

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4

_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


class Refused(Exception):
    """A precondition the server cannot check for us failed (exit code 1)."""


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def ensure_model(
    api: AdminApi, model: str, *, create: bool, display_name: str, license_file: Path | None
) -> bool:
    """Make sure the model exists. Returns True if it was created."""
    if api.get_model(model) is not None:
        return False
    if not create:
        raise Refused(f"model {model} does not exist (drop --no-create-model to create it)")
    body: dict[str, Any] = {"id": model, "display_name": display_name}
    if license_file is not None:
        body["license"] = license_file.read_text("utf-8")
    api.create_model(body)
    return True


def ensure_release(api: AdminApi, model: str, version: str, notes: str) -> bool:
    """Create the draft, or resume it. Returns True if it was created."""
    if api.create_release(model, version, notes) is not None:
        return True
    rel = api.get_release(model, version)
    if rel["status"] != "draft":
        raise Refused(
            f"{model} {version} is already published (revision {rel['revision']}); "
            "a published release never changes, publish a new version"
        )
    return False


def ensure_components(api: AdminApi, model: str, version: str, specs: list[ComponentSpec]) -> None:
    existing = {c["name"]: c for c in api.components(model, version)}
    for spec in specs:
        wanted = [s.as_json() for s in spec.schedule]
        have = existing.get(spec.name)
        if have is None:
            api.create_component(model, version, spec.name, wanted)
            continue
        current = [
            {"tier": s["tier"], "at": str(s["at"]).replace("+00:00", "Z")} for s in have["schedule"]
        ]
        if current != wanted and not _same_but_relative(spec.schedule, current):
            raise Refused(
                f"component {spec.name} already exists in the draft with another schedule "
                f"({current or 'none'}); change it with the schedule commands or match it"
            )


def _same_but_relative(wanted: list[Stage], current: list[dict[str, str]]) -> bool:
    """A resumed publish whose ``+2h`` stages were fixed by the first run: the same tiers,
    the same absolute times, and the draft's own times where the stage was relative."""
    return len(wanted) == len(current) and all(
        w.tier == c["tier"] and (w.typed or w.as_json()["at"] == c["at"])
        for w, c in zip(wanted, current, strict=True)
    )


def draft_files(api: AdminApi, model: str, version: str) -> dict[str, tuple[str, str]]:
    manifest = api.manifest(model, version)
    return {f["path"]: (f["sha256"], f["component"]) for f in manifest["files"]}


def run(
    api: AdminApi,
    plan: Plan,
    *,
    model: str,
    version: str,
    notes: str,
    create_model: bool,
    display_name: str,
    license_file: Path | None,
    jobs: int,
    publish: bool,
    prune: bool,
    err: Console,
) -> str | None:
    """Do the publishing; returns the revision (``None`` with ``publish=False``)."""
    if ensure_model(
        api, model, create=create_model, display_name=display_name, license_file=license_file
    ):
        err.print(f"created model {model}", markup=False, highlight=False)
    created = ensure_release(api, model, version, notes)
    err.print(
        f"{'created' if created else 'resuming'} draft {model} {version}",
        markup=False,
        highlight=False,
    )
    ensure_components(api, model, version, plan.components)
    existing = draft_files(api, model, version)
    extra = sorted(set(existing) - {f.path for f in plan.files})
    if extra and not prune:
        raise Refused(
            f"the draft holds {len(extra)} file(s) not in the folder ({', '.join(extra[:5])}"
            f"{' ...' if len(extra) > 5 else ''}); pass --prune to delete them from the draft"
        )
    for path in extra:
        api.delete_file(model, version, path)
        err.print(f"deleted {path} from the draft", markup=False, highlight=False)
    err.print(
        f"{len(plan.files)} file(s), {human(plan.total_bytes)}: hashing, and uploading what "
        f"the draft lacks, {jobs} at a time",
        markup=False,
        highlight=False,
    )
    results = upload_all(
        api,
        model=model,
        version=version,
        files=plan.files,
        existing=existing,
        jobs=jobs,
        view=make_view(err, plan.total_bytes),
    )
    sent = sum(1 for r in results if r.sent)
    err.print(
        f"{sent} uploaded, {len(results) - sent} already in the draft",
        markup=False,
        highlight=False,
    )
    if not publish:
        err.print(f"left {model} {version} as a draft (--no-publish)", markup=False)
        return None
    out = api.publish(model, version)
    err.print(
        f"published {model} {version} at {out['published_at']}; revision:",
        markup=False,
        highlight=False,
    )
    return str(out["revision"])


def publish_command(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, dir_okay=True, help="folder holding the release files"
        ),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="model id, namespace/name")],
    version: Annotated[str, typer.Option("--version", help="release version, e.g. v1")],
    component: Annotated[
        list[str],
        typer.Option(
            "--component",
            "-c",
            help="NAME=PATTERN: files matching PATTERN go to component NAME (repeatable; a "
            "pattern without '/' matches file names, the first matching component wins)",
        ),
    ],
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            "--schedule",
            "-s",
            help="NAME=TIER@WHEN[,TIER@WHEN...]: the component's embargo stages; WHEN is an "
            "ISO 8601 time with a zone or relative to now (+2h, +30d, +1d12h), e.g. "
            "weights=partner@+2h,open@+30d or weights=open@2027-03-01T00:00:00Z (repeatable)",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-x", help="leave out matching files")
    ] = None,
    include_hidden: Annotated[
        bool, typer.Option(help="also publish dot-files and dot-directories")
    ] = False,
    notes: Annotated[str, typer.Option(help="release notes")] = "",
    create_model: Annotated[
        bool, typer.Option("--create-model/--no-create-model", help="create the model if missing")
    ] = True,
    display_name: Annotated[str, typer.Option(help="display name of a created model")] = "",
    license_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="license text of a created model"),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=32, help="parallel uploads")] = 4,
    do_publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="publish once uploaded")
    ] = True,
    prune: Annotated[
        bool, typer.Option(help="delete files from a resumed draft that the folder lacks")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="print which file goes to which component and stop")
    ] = False,
    url: Annotated[
        str | None, typer.Option(help="server URL [env WEIGHTGATE_URL]", show_default=False)
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="admin API key [env WEIGHTGATE_TOKEN]", show_default=False),
    ] = None,
) -> None:
    """Publish the files in DIR as release VERSION of MODEL."""
    # soft_wrap: long paths and hashes stay on one line in logs instead of being folded.
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def fail(code: int, message: str) -> typer.Exit:
        err.print(f"error: {message}", markup=False, highlight=False)
        return typer.Exit(code)

    try:
        if not _MODEL_ID.fullmatch(model):
            raise PlanError(f"--model {model!r}: expected namespace/name")
        specs = parse_components(component)
        # Relative stages ('+2h') are fixed once, from this whole second (schedules read
        # better without microseconds), and said back before anything is sent.
        parse_schedules(schedule or [], specs, now=datetime.now(UTC).replace(microsecond=0))
        plan = make_plan(directory, specs, exclude=exclude or [], include_hidden=include_hidden)
    except PlanError as e:
        raise fail(EXIT_USAGE, str(e)) from e

    for spec in specs:
        if spec.schedule:
            stages = ", ".join(stage.describe() for stage in spec.schedule)
            err.print(f"schedule {spec.name}: {stages}", markup=False, highlight=False)

    if plan.skipped_hidden:
        err.print(f"skipping {plan.skipped_hidden} hidden file(s)/dir(s) (--include-hidden)")
    if dry_run:
        for f in plan.files:  # tab-separated for scripts: component, size, path
            typer.echo(f"{f.component}\t{f.size}\t{f.path}")
        return

    config = load_config()
    base = (url or config.url).rstrip("/")
    key = token or config.token
    if not key:
        raise fail(EXIT_AUTH, "no API key: pass --token or set WEIGHTGATE_TOKEN")
    timeout = httpx.Timeout(connect=15.0, read=1800.0, write=300.0, pool=None)
    limits = httpx.Limits(max_connections=jobs + 2, max_keepalive_connections=jobs + 2)
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "weightgate-publish"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout, limits=limits) as http:
            revision = run(
                AdminApi(http),
                plan,
                model=model,
                version=version,
                notes=notes,
                create_model=create_model,
                display_name=display_name,
                license_file=license_file,
                jobs=jobs,
                publish=do_publish,
                prune=prune,
                err=err,
            )
    except ApiError as e:
        code = EXIT_AUTH if e.status in (401, 403) else EXIT_REFUSED
        raise fail(code, f"{e.detail} ({e.code}, HTTP {e.status})") from e
    except Refused as e:
        raise fail(EXIT_REFUSED, str(e)) from e
    except Unreachable as e:
        raise fail(EXIT_UNREACHABLE, f"cannot reach {base}: {e}") from e
    except OSError as e:
        raise fail(EXIT_REFUSED, f"reading {e.filename or 'a file'}: {e.strerror}") from e
    if revision is not None:
        typer.echo(revision)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("publish")(publish_command)
