"""``weightgate requests list|approve|deny``: an admin's queue of access requests, over the
HTTP API.

Decisions go through ``POST /v1/access-requests/bulk`` (up to 5,000 ids a call, set-based on
the server): one id or the whole pending queue (``--all-pending``, narrowed by ``--model``
and ``--user``) cost the same few calls. A request the server skips is reported with why:
unknown, or already decided (and how).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

import typer

from app.cli.command import confirm_or_refuse, exits_on_errors
from app.cli.config import load_config
from app.cli.errors import CliError, NotFoundError, UsageError
from app.cli.http import ApiClient
from app.cli.moments import instant, relative

requests_app = typer.Typer(
    help="Access requests (admin): the approval queue, approve, deny.", no_args_is_help=True
)

BULK_MAX = 5000  # ids per bulk call (the server's limit)
# Skipped requests looked up one by one to say how they were decided; beyond this, a count.
EXPLAIN_MAX = 20
Status = Literal["pending", "approved", "denied", "all"]

ModelOpt = Annotated[str | None, typer.Option(help="only requests for this model (ns/name)")]
UserOpt = Annotated[str | None, typer.Option(help="only this user's requests (email or id)")]


def user_id(api: ApiClient, user: str) -> int:
    """A user named by id or email, as the id the API filters on."""
    if user.isdigit():
        return int(user)
    found = api.get("/v1/users", what=f"looking up {user}", params={"email": user})["items"]
    if not found:
        raise NotFoundError(f"no user with email {user}", code="user_not_found")
    return int(found[0]["id"])


def fetch(
    api: ApiClient, *, status: Status, model: str | None, user: str | None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 1000}
    if status != "all":
        params["status"] = status
    if model:
        params["model"] = model
    if user:
        params["user"] = user_id(api, user)
    return api.paginate("/v1/access-requests", what="listing access requests", params=params)


def answers_text(answers: dict[str, Any], width: int = 60) -> str:
    text = "; ".join(f"{k}={v}" for k, v in answers.items())
    return text if len(text) <= width else text[: width - 1] + "…"


@requests_app.command("list")
@exits_on_errors
def list_requests(
    status: Annotated[str, typer.Option(help="pending, approved, denied or all")] = "pending",
    model: ModelOpt = None,
    user: UserOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="the API's answers, as JSON")] = False,
) -> None:
    """Access requests, oldest first (by default the pending queue)."""
    if status not in ("pending", "approved", "denied", "all"):
        raise UsageError("--status is pending, approved, denied or all")
    with ApiClient(load_config()) as api:
        api.require_key("listing access requests")
        rows = fetch(api, status=cast(Status, status), model=model, user=user)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    now = datetime.now(UTC)
    for r in rows:
        asked = relative(instant(r["created_at"]), now)
        decided = ""
        if r.get("decided_at"):
            decided = f"  decided {relative(instant(r['decided_at']), now)}"
            decided += f" ({r['reason']})" if r.get("reason") else ""
        typer.echo(
            f"#{r['id']:<6} {r['model']:<30} {r['user']['email']:<32} {r['status']:<9} "
            f"asked {asked}{decided}  {answers_text(r['answers'])}".rstrip()
        )
    per_model = Counter(r["model"] for r in rows)
    summary = ", ".join(f"{m}: {n}" for m, n in sorted(per_model.items()))
    label = "" if status == "all" else f" {status}"
    typer.echo(f"{len(rows)}{label} request(s)" + (f" ({summary})" if summary else ""))


def decide(
    *,
    action: Literal["approve", "deny"],
    ids: list[int],
    all_pending: bool,
    model: str | None,
    user: str | None,
    reason: str | None,
    yes: bool,
) -> None:
    if all_pending == bool(ids):
        raise UsageError(f"give request ids to {action}, or --all-pending (not both)")
    if (model or user) and not all_pending:
        raise UsageError("--model and --user choose among pending requests: use --all-pending")
    past = "approved" if action == "approve" else "denied"
    with ApiClient(load_config()) as api:
        api.require_key(f"{action} access requests")
        if all_pending:
            queue = fetch(api, status="pending", model=model, user=user)
            if not queue:
                typer.echo("no pending request" + (" matches" if model or user else ""))
                return
            per_model = Counter(r["model"] for r in queue)
            listed = ", ".join(f"{m}: {n}" for m, n in sorted(per_model.items()))
            confirm_or_refuse(f"{action} {len(queue)} pending request(s) ({listed})?", yes=yes)
            ids = [int(r["id"]) for r in queue]
        done: list[int] = []
        skipped: list[dict[str, Any]] = []
        for start in range(0, len(ids), BULK_MAX):
            out = api.request(
                "POST",
                "/v1/access-requests/bulk",
                json={"action": action, "ids": ids[start : start + BULK_MAX], "reason": reason},
                what=f"{action} access requests",
                idempotent=True,  # deciding a decided request again changes nothing
            )
            done += out["done"]
            skipped += out["skipped"]
        notes = [explain_skip(api, s, explain=len(skipped) <= EXPLAIN_MAX) for s in skipped]
    if done:
        typer.echo(f"{past} {len(done)}: " + " ".join(f"#{i}" for i in done))
    for note in notes:
        typer.echo(f"skipped {note}", err=True)
    if not skipped or (all_pending and all(s["code"] == "not_pending" for s in skipped)):
        return  # under --all-pending, another admin deciding first is no failure
    if all(s["code"] == "not_found" for s in skipped):
        raise NotFoundError(f"{len(skipped)} request(s) not found", code="access_request_not_found")
    raise CliError(f"{len(skipped)} request(s) not {past} (see above)", code="not_pending")


def explain_skip(api: ApiClient, skipped: dict[str, Any], *, explain: bool) -> str:
    rid = skipped["id"]
    if skipped["code"] == "not_found":
        return f"#{rid}: no such request"
    if not explain:
        return f"#{rid}: already decided"
    r = api.get(f"/v1/access-requests/{rid}", what=f"reading request #{rid}")
    when = relative(instant(r["decided_at"]), datetime.now(UTC)) if r.get("decided_at") else ""
    return f"#{rid}: already {r['status']} {when}".rstrip()


IdsArg = Annotated[list[int] | None, typer.Argument(help="request ids", show_default=False)]
AllPending = Annotated[
    bool, typer.Option("--all-pending", help="every pending request (with --model/--user: those)")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="with --all-pending: ask nothing")]


@requests_app.command("approve")
@exits_on_errors
def approve(
    ids: IdsArg = None,
    all_pending: AllPending = False,
    model: ModelOpt = None,
    user: UserOpt = None,
    reason: Annotated[str | None, typer.Option(help="recorded with the decision")] = None,
    yes: YesOpt = False,
) -> None:
    """Approve requests: each user gets a research grant for the model."""
    decide(
        action="approve",
        ids=list(ids or []),
        all_pending=all_pending,
        model=model,
        user=user,
        reason=reason,
        yes=yes,
    )


@requests_app.command("deny")
@exits_on_errors
def deny(
    reason: Annotated[str, typer.Option(help="why (required; the requester sees it)")],
    ids: IdsArg = None,
    all_pending: AllPending = False,
    model: ModelOpt = None,
    user: UserOpt = None,
    yes: YesOpt = False,
) -> None:
    """Deny requests, with a reason."""
    decide(
        action="deny",
        ids=list(ids or []),
        all_pending=all_pending,
        model=model,
        user=user,
        reason=reason,
        yes=yes,
    )


def register(app: typer.Typer) -> None:
    """Add ``weightgate requests ...`` to the top-level app."""
    app.add_typer(requests_app, name="requests")
