"""The tier ladder, most restricted first, and the access rule that compares tiers."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    INTERNAL = "internal"
    PARTNER = "partner"
    RESEARCH = "research"
    OPEN = "open"

    @property
    def rank(self) -> int:
        """0 = most restricted. A higher rank is more open."""
        return _RANK[self]

    @property
    def proprietary(self) -> bool:
        return self in (Tier.INTERNAL, Tier.PARTNER)


_RANK = {Tier.INTERNAL: 0, Tier.PARTNER: 1, Tier.RESEARCH: 2, Tier.OPEN: 3}
LADDER = (Tier.INTERNAL, Tier.PARTNER, Tier.RESEARCH, Tier.OPEN)


def more_restricted(a: Tier, b: Tier) -> Tier:
    return a if a.rank <= b.rank else b


def may_download(clearance: Tier, effective: Tier) -> bool:
    """The access rule: a clearance may take a component whose effective tier is at least
    as open as the clearance (``internal`` clearance takes everything, ``open`` only open)."""
    return clearance.rank <= effective.rank
