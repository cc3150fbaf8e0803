"""The access decision: may this caller download this component at this instant, and if not,
why and until when. Every edge (``/v1/files``, ``POST /v1/tokens``, the catalogue, the Hub
routes, the console) asks :func:`decide` and only formats its answer
(:func:`app.refusals.denial`); the CLI reads the same ``code`` back.

Why a component is closed, most specific first:

- ``component_held``: its schedule would open it to the caller by now, but a hold (an
  admin's, or a model's safety policy) froze it before that stage;
- ``access_grant_required``: it is open to approved researchers now and the caller, who is
  not a partner, has no grant (a partner cannot hold a grant: its way in is an agreement);
- ``embargoed``: it opens to the caller's clearance at a known date (``until``);
- ``not_open_to_you``: nothing scheduled opens it to the caller (held, restricted, or no
  stage that far). Not ``embargoed``: DESIGN.md promises an embargo comes with its date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.policy.principals import Principal
from app.policy.schedule import ScheduleState, effective_tier, opens_to
from app.policy.tiers import Tier, may_download


class Reason(StrEnum):
    """Every reason a request for a thing is refused; :data:`app.refusals.ANSWERS` gives
    each its HTTP status, problem ``code`` and Hugging Face ``X-Error-Code``."""

    MODEL_NOT_FOUND = "model_not_found"
    RELEASE_NOT_FOUND = "release_not_found"
    COMPONENT_NOT_FOUND = "component_not_found"
    FILE_NOT_FOUND = "file_not_found"
    EMBARGOED = "embargoed"  # opens to the caller at a known date
    GRANT_REQUIRED = "access_grant_required"  # opens to the caller with an access grant
    NOT_OPEN_TO_YOU = "not_open_to_you"  # nothing scheduled opens it to the caller
    HELD = "component_held"  # a stage that would open it to the caller is held


# The reasons decide() gives; the others are about existence (app.policy.disclosure).
ACCESS_REASONS = (
    Reason.HELD,
    Reason.GRANT_REQUIRED,
    Reason.EMBARGOED,
    Reason.NOT_OPEN_TO_YOU,
)


@dataclass(frozen=True)
class Allowed:
    tier: Tier  # the component's effective tier at the instant asked


@dataclass(frozen=True)
class Refused:
    reason: Reason
    tier: Tier  # the component's effective tier at the instant asked
    clearance: Tier
    # When the component opens to the caller's clearance if the schedule runs as planned.
    until: datetime | None = None


Decision = Allowed | Refused


def decide(
    caller: Principal, *, clearance: Tier, schedule: ScheduleState, now: datetime
) -> Decision:
    """The access rule for one component at ``now``, with the reason when it refuses."""
    tier = effective_tier(schedule, now)
    if may_download(clearance, tier):
        return Allowed(tier)
    if schedule.held_at is not None and may_download(
        clearance, effective_tier(unheld(schedule), now)
    ):
        return Refused(Reason.HELD, tier, clearance)
    until = opens_to(schedule, now, clearance)
    if caller.kind != "partner" and clearance == Tier.OPEN and tier == Tier.RESEARCH:
        return Refused(Reason.GRANT_REQUIRED, tier, clearance, until)
    if until is not None:
        return Refused(Reason.EMBARGOED, tier, clearance, until)
    return Refused(Reason.NOT_OPEN_TO_YOU, tier, clearance)


def unheld(schedule: ScheduleState) -> ScheduleState:
    """The schedule as it would stand without its hold."""
    return ScheduleState(schedule.stages, None, schedule.restricted_tier)


def allows(schedule: ScheduleState, clearance: Tier, now: datetime) -> bool:
    """Only the yes or no of :func:`decide`, for listings that filter."""
    return may_download(clearance, effective_tier(schedule, now))
