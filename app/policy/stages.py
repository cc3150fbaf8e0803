"""Rules a schedule must satisfy, checked before anything is written.

Pure: a broken rule raises :class:`InvalidSchedule`, which the catalogue turns into a 422
(:func:`app.catalogue.service.check_schedule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.policy.tiers import Tier

MAX_STAGES = 16


class InvalidSchedule(ValueError):
    """A schedule that breaks a rule; ``code`` is the problem code callers answer with."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_stages(
    stages: Sequence[tuple[Tier, datetime]],
    *,
    after: Tier = Tier.INTERNAL,
    not_before: datetime | None = None,
) -> None:
    """Stages must have strictly increasing times and each open further than the one
    before (the first further than ``after``); none may be earlier than ``not_before``."""
    if len(stages) > MAX_STAGES:
        raise InvalidSchedule(
            f"a schedule has at most {MAX_STAGES} stages", code="invalid_schedule"
        )
    previous_tier = after
    previous_at: datetime | None = None
    for i, (tier, at) in enumerate(stages):
        if at.tzinfo is None:
            raise InvalidSchedule(
                f"schedule[{i}].at needs a timezone (use Z for UTC)", code="invalid_schedule"
            )
        if previous_at is not None and at <= previous_at:
            raise InvalidSchedule(
                f"schedule[{i}].at ({at.isoformat()}) must be later than the stage before it "
                f"({previous_at.isoformat()})",
                code="invalid_schedule",
            )
        if tier.rank <= previous_tier.rank:
            raise InvalidSchedule(
                f"schedule[{i}] moves to '{tier}', which does not open further than "
                f"'{previous_tier}'; each stage must be more open than the one before",
                code="invalid_schedule",
            )
        if not_before is not None and at < not_before:
            raise InvalidSchedule(
                f"schedule[{i}].at ({at.isoformat()}) is in the past; stages that already "
                "happened cannot be added or edited",
                code="stage_in_past",
            )
        previous_tier, previous_at = tier, at
