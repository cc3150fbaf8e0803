"""The embargo-control calls behind ``weightgate schedule``: which releases a command acts on,
merging the stages to change into the current schedule, and turning the server's refusals
into what to do next.

Over the HTTP API only (an admin key on any server), so nothing here imports the server;
the server checks every rule again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from app.cli.errors import CliError, NotFoundError, UsageError
from app.cli.http import ApiClient
from app.cli.moments import instant, stamp
from app.cli.plan import Target
from app.cli.publish_plan import TIERS, PlanError, Stage, parse_stage_time
from app.when import format_utc

STAGE_TIERS = TIERS[1:]  # a schedule starts internal; every stage opens further
CEILINGS = TIERS[:-1]  # an emergency ceiling below open


@dataclass(frozen=True)
class Where:
    """One component of one release: what each schedule call acts on."""

    model: str
    version: str
    component: str

    @property
    def label(self) -> str:
        return f"{self.model}@{self.version} {self.component}"

    @property
    def url(self) -> str:
        version = quote(self.version, safe="")
        component = quote(self.component, safe="")
        return f"/v1/models/{self.model}/releases/{version}/components/{component}/schedule"

    def command(self, action: str) -> str:
        """The shell command that runs ``action`` here."""
        return f"weightgate schedule {action} {self.model}@{self.version} {self.component}"


def versions(api: ApiClient, target: Target, *, all_releases: bool) -> list[str]:
    """The releases a command acts on: the one named, every release (drafts included) with
    ``--all-releases``, else the latest published one."""
    what = f"reading the releases of {target.model}"
    if all_releases:
        if target.version:
            raise UsageError(
                f"--all-releases acts on every release of {target.model}: name the model "
                f"without @{target.version}"
            )
        releases = api.paginate(f"/v1/models/{target.model}/releases", what=what)
        if not releases:
            raise NotFoundError(f"{target.model} has no release", code="release_not_found")
        return [str(r["version"]) for r in releases]
    if target.version:
        return [target.version]
    model = api.get(f"/v1/models/{target.model}", what=what)
    if not model.get("latest_version"):
        raise NotFoundError(
            f"{target.model} has no published release: name one, {target.model}@VERSION",
            code="release_not_found",
        )
    return [str(model["latest_version"])]


def parse_changes(specs: Sequence[str], *, now: datetime) -> list[Stage]:
    """``TIER@WHEN`` arguments; a relative ``WHEN`` counts from ``now``, once for every
    release the command touches."""
    changes: list[Stage] = []
    for spec in specs:
        tier, sep, when = spec.strip().partition("@")
        if not sep or not when:
            raise UsageError(f"{spec!r}: a stage is TIER@WHEN, e.g. research@+2d")
        if tier not in STAGE_TIERS:
            raise UsageError(f"{spec!r}: the tier is one of {', '.join(STAGE_TIERS)}")
        if any(c.tier == tier for c in changes):
            raise UsageError(f"{tier} is given twice")
        try:
            stage = parse_stage_time(when, now=now)
        except PlanError as e:
            raise UsageError(f"{spec!r}: {e}") from e
        changes.append(Stage(tier, stage.at, stage.typed))
    return changes


def happened(stage: dict[str, Any], now: datetime) -> bool:
    """Whether the server counts the stage as history: recorded, or its time came and no
    hold froze it (a ``capped`` stage whose time came is history too)."""
    return stage.get("recorded_at") is not None or (
        stage["state"] != "held" and instant(stage["at"]) <= now
    )


def merge(
    current: dict[str, Any], changes: Sequence[Stage], drops: Sequence[str], *, now: datetime
) -> list[dict[str, str]]:
    """The whole schedule to PUT: the current one with each changed tier moved (or added)
    and each dropped tier removed. Stages that already happened stay exactly as they are;
    asking to change one is refused here, with the reason."""
    where = f"{current['model']}@{current['version']} {current['component']}"
    stages = {s["tier"]: s for s in current["stages"]}
    for tier in [*(c.tier for c in changes), *drops]:
        old = stages.get(tier)
        if old is not None and happened(old, now):
            raise CliError(
                f"{where}: the '{tier}' stage took effect at {stamp(old['at'], now)}; stages "
                "that happened cannot be moved or removed (to close the component again, "
                "use `weightgate schedule restrict`)",
                code="stage_in_past",
            )
    for tier in drops:
        if tier not in stages:
            raise CliError(f"{where} has no '{tier}' stage to drop", code="no_such_stage")
        del stages[tier]
    wanted = {t: instant(s["at"]) for t, s in stages.items()}
    for change in changes:
        wanted[change.tier] = change.at
    ordered = sorted(wanted.items(), key=lambda item: item[1])
    check_order(where, ordered)
    return [{"tier": tier, "at": format_utc(at)} for tier, at in ordered]


def check_order(where: str, ordered: Sequence[tuple[str, datetime]]) -> None:
    """Each stage must open further than the one before: say which two collide."""
    for (tier_a, at_a), (tier_b, at_b) in pairwise(ordered):
        if at_a == at_b or TIERS.index(tier_b) < TIERS.index(tier_a):
            raise CliError(
                f"{where}: '{tier_b}' at {format_utc(at_b)} would not come after "
                f"'{tier_a}' at {format_utc(at_a)}; each stage must open further than the one "
                f"before ({' < '.join(TIERS)}): move '{tier_a}' too, or --drop it",
                code="invalid_schedule",
            )


def unchanged(current: dict[str, Any], schedule: list[dict[str, str]]) -> bool:
    have = [(s["tier"], instant(s["at"])) for s in current["stages"]]
    return have == [(s["tier"], instant(s["at"])) for s in schedule]


def explain_refusal(api: ApiClient, where: Where, err: CliError, *, action: str) -> CliError:
    """The server's 409s, with the command that resolves them."""
    if err.code not in ("schedule_held", "component_restricted"):
        return err
    state = api.get(where.url, what=f"reading the schedule of {where.label}")
    now = datetime.now(UTC)
    if err.code == "schedule_held":
        message = (
            f"{where.label} is held (since {stamp(state['held_at'], now)}, reason: "
            f"{state['hold_reason']}): a {action} cannot pass a hold. Resume it first, "
            f"`{where.command('resume')}`, then run the {action} again; resuming applies at "
            "once the stages whose time passed during the hold"
        )
    else:
        message = (
            f"{where.label} is restricted to '{state['restricted_tier']}' (since "
            f"{stamp(state['restricted_at'], now)}, reason: {state['restrict_reason']}): it "
            f"opens no further until `{where.command('resume')}` ends the restriction (or "
            f"`{where.command('restrict')} --tier T` moves the ceiling)"
        )
    return CliError(message, code=err.code)
