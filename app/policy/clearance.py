"""Clearance of a principal for a model, from who it is and what it holds.

Clearance: admins → internal; a partner whose agreement covers the model (not ended, partner
not disabled) → partner; a user with an active grant → research; everyone else → open.
Pure: the facts come in as :class:`Holdings` (read by :func:`app.auth.holdings.holdings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from app.policy.principals import Principal
from app.policy.tiers import Tier


def clearance_of(principal: Principal, *, covered: bool, granted: bool) -> Tier:
    """The clearance DESIGN.md defines, from who the caller is and what it holds."""
    if principal.is_admin:
        return Tier.INTERNAL
    if principal.kind == "partner" and covered:
        return Tier.PARTNER
    if principal.kind == "user" and granted:
        return Tier.RESEARCH
    return Tier.OPEN


@dataclass(frozen=True)
class Holdings:
    """What some principals hold on some models: live grants and partner agreements.

    Loaded with one query per principal kind (:func:`holdings`), whatever the number of
    principals and models; deciding from it is pure, at any ``now``.
    """

    grants: frozenset[tuple[int, int]] = frozenset()  # (user_id, model_id), not revoked
    # (partner_id, model_id) → the agreements' (ends_at, partner disabled)
    agreements: Mapping[tuple[int, int], tuple[tuple[datetime | None, bool], ...]] = field(
        default_factory=dict
    )

    @classmethod
    def of(
        cls,
        *,
        grants: Iterable[tuple[int, int]],
        agreements: Iterable[tuple[int, int, datetime | None, datetime | None]],
    ) -> Holdings:
        """From rows: ``(user_id, model_id)`` of live grants, ``(partner_id, model_id, ends
        at, partner disabled at)`` of agreements."""
        found: dict[tuple[int, int], tuple[tuple[datetime | None, bool], ...]] = {}
        for p, m, ends_at, disabled_at in agreements:
            found[(p, m)] = (*found.get((p, m), ()), (ends_at, disabled_at is not None))
        return cls(frozenset(grants), found)

    def clearance(self, principal: Principal, model_id: int, now: datetime) -> Tier:
        covered = granted = False
        if principal.kind == "partner" and principal.id is not None:
            covered = any(
                not disabled and (ends_at is None or ends_at > now)
                for ends_at, disabled in self.agreements.get((principal.id, model_id), ())
            )
        elif principal.kind == "user" and principal.id is not None:
            granted = (principal.id, model_id) in self.grants
        return clearance_of(principal, covered=covered, granted=granted)


def usable_clearance(token_tier: Tier, clearance_now: Tier) -> Tier:
    """A token grants neither more than it was issued with nor more than its holder has now."""
    return token_tier if token_tier.rank >= clearance_now.rank else clearance_now
