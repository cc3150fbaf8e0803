"""Why a principal may not download a component now, in the words DESIGN.md promises:
embargoed until a date (403, with the date), needs an access grant (403), or on hold (403
``component_held``: a stage that would open it to the caller is frozen until resumed).

Used when a token is issued and again at every redemption, so a token never outlives the
permission that issued it.
"""

from __future__ import annotations

from datetime import datetime

from app.access.tiers import Tier, may_download
from app.disclosure import Reason
from app.disclosure import refusal as answer
from app.errors import AppError
from app.schedule.evaluate import ScheduleState, effective_tier, opens_to


def unheld(state: ScheduleState) -> ScheduleState:
    return ScheduleState(state.stages, None, state.restricted_tier)


def usable_clearance(token_tier: Tier, clearance_now: Tier) -> Tier:
    """A token grants neither more than it was issued with nor more than its holder has now."""
    return token_tier if token_tier.rank >= clearance_now.rank else clearance_now


def refusal(
    state: ScheduleState, *, clearance: Tier, principal_kind: str, now: datetime, what: str
) -> AppError | None:
    """``None`` if ``clearance`` may download the component at ``now``; else the error."""
    effective = effective_tier(state, now)
    if may_download(clearance, effective):
        return None
    if state.held_at is not None and may_download(clearance, effective_tier(unheld(state), now)):
        # The reason stays with admins: it may name safety reports or their reporters.
        return answer(
            Reason.HELD,
            f"{what} is on hold: the stage that opens it to you waits for an administrator "
            "to resume its schedule",
        )
    if principal_kind == "user" and clearance == Tier.OPEN and effective == Tier.RESEARCH:
        return answer(
            Reason.GRANT_REQUIRED,
            f"{what} is open to approved researchers: request access to this model first",
        )
    until = opens_to(state, now, clearance)
    if until is None:
        return answer(Reason.EMBARGOED, f"{what} is embargoed, with no date set for you")
    stamp = until.isoformat().replace("+00:00", "Z")
    return answer(Reason.EMBARGOED, f"{what} is embargoed until {stamp}", until=until)
