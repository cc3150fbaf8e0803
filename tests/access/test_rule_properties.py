"""Property tests of the access rule: clearance and tier ranks combine exactly as DESIGN.md
says, for any principal, agreement/grant state, schedule, hold, ceiling and instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app.auth.holdings import clearance_for, clearances_for
from app.clock import FixedClock
from app.models import Grant, Model, Partner, PartnerAgreement
from app.policy.clearance import clearance_of
from app.policy.decision import allows as component_allows
from app.policy.principals import ANONYMOUS, Principal
from app.policy.schedule import ScheduleState, effective_tier
from app.policy.tiers import LADDER, Tier, may_download

BASE = datetime(2026, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)

principals = st.one_of(
    st.just(ANONYMOUS),
    st.builds(
        Principal,
        kind=st.just("user"),
        id=st.integers(1, 10**6),
        role=st.sampled_from(["admin", "researcher"]),
    ),
    st.builds(Principal, kind=st.just("partner"), id=st.integers(1, 10**6)),
)


@st.composite
def states(draw: st.DrawFn) -> ScheduleState:
    tiers = sorted(
        draw(st.lists(st.sampled_from(LADDER[1:]), unique=True, max_size=3)), key=lambda t: t.rank
    )
    offsets = sorted(
        draw(st.lists(st.integers(0, 10**9), unique=True, min_size=len(tiers), max_size=len(tiers)))
    )
    held = draw(st.one_of(st.none(), st.integers(0, 10**9)))
    return ScheduleState.of(
        [(t, BASE + o * US) for t, o in zip(tiers, offsets, strict=True)],
        held_at=None if held is None else BASE + held * US,
        restricted_tier=draw(st.one_of(st.none(), st.sampled_from(LADDER))),
    )


def design_allows(principal: Principal, covered: bool, granted: bool, effective: Tier) -> bool:
    """DESIGN.md's rule spelled out case by case, independently of the tier ranks."""
    if principal.kind == "user" and principal.role == "admin":
        return True
    if (
        principal.kind == "partner"
        and covered
        and effective in (Tier.PARTNER, Tier.RESEARCH, Tier.OPEN)
    ):
        return True
    if principal.kind == "user" and granted and effective in (Tier.RESEARCH, Tier.OPEN):
        return True
    return effective == Tier.OPEN


@settings(max_examples=500)
@given(principals, st.booleans(), st.booleans(), states(), st.integers(-10, 10**9 + 10))
def test_the_rule_matches_design(
    principal: Principal, covered: bool, granted: bool, state: ScheduleState, offset: int
) -> None:
    now = BASE + offset * US
    clearance = clearance_of(principal, covered=covered, granted=granted)
    effective = effective_tier(state, now)
    assert component_allows(state, clearance, now) == design_allows(
        principal, covered, granted, effective
    )


@settings(max_examples=200)
@given(principals, st.booleans(), st.booleans())
def test_clearance_is_the_most_open_tier_the_principal_holds(
    principal: Principal, covered: bool, granted: bool
) -> None:
    clearance = clearance_of(principal, covered=covered, granted=granted)
    if principal.is_admin:
        assert clearance == Tier.INTERNAL
    elif principal.kind == "partner":
        assert clearance == (Tier.PARTNER if covered else Tier.OPEN)
    elif principal.kind == "user":
        assert clearance == (Tier.RESEARCH if granted else Tier.OPEN)
    else:
        assert clearance == Tier.OPEN


@given(st.sampled_from(LADDER), st.sampled_from(LADDER))
def test_ranks_combine_as_an_order(clearance: Tier, effective: Tier) -> None:
    assert may_download(clearance, effective) == (
        LADDER.index(clearance) <= LADDER.index(effective)
    )
    assert may_download(Tier.INTERNAL, effective)
    assert may_download(clearance, Tier.OPEN)
    assert may_download(Tier.OPEN, effective) == (effective == Tier.OPEN)


@settings(max_examples=300)
@given(states(), st.sampled_from(LADDER))
def test_one_microsecond_before_a_stage_the_old_tier_decides(
    state: ScheduleState, clearance: Tier
) -> None:
    for stage in state.stages:
        before = component_allows(state, clearance, stage.at - US)
        at = component_allows(state, clearance, stage.at)
        assert before == may_download(clearance, effective_tier(state, stage.at - US))
        assert at == may_download(clearance, effective_tier(state, stage.at))
        assert not (before and not at)  # a stage never takes access away


def test_clearance_reads_grants_and_agreements(db: Session, clock: FixedClock) -> None:
    from tests.factories.principals import make_user

    now = clock.now()
    models = []
    for i in range(3):
        m = Model(
            namespace="acme", name=f"m{i}", license_sha256="0" * 64, created_at=now, updated_at=now
        )
        db.add(m)
        models.append(m)
    db.flush()
    user, _ = make_user(db, clock)
    partner = Partner(name="P", client_id="wgc_p", secret_hash="0" * 64, created_at=now)
    db.add(partner)
    db.flush()
    db.add(Grant(user_id=user.id, model_id=models[0].id, created_at=now))
    db.add(Grant(user_id=user.id, model_id=models[1].id, created_at=now, revoked_at=now))
    db.add(PartnerAgreement(partner_id=partner.id, model_id=models[1].id, created_at=now))
    db.add(
        PartnerAgreement(
            partner_id=partner.id, model_id=models[2].id, created_at=now, ends_at=now + US
        )
    )
    db.flush()
    ids = [m.id for m in models]
    as_user = Principal(kind="user", id=user.id, role="researcher")
    as_partner = Principal(kind="partner", id=partner.id)
    assert clearances_for(db, as_user, ids, now=now) == dict(
        zip(ids, [Tier.RESEARCH, Tier.OPEN, Tier.OPEN], strict=True)
    )
    assert clearances_for(db, as_partner, ids, now=now) == dict(
        zip(ids, [Tier.OPEN, Tier.PARTNER, Tier.PARTNER], strict=True)
    )
    # The dated agreement ends at its exact instant.
    assert clearance_for(db, as_partner, ids[2], now=now + US) == Tier.OPEN
    assert clearance_for(db, ANONYMOUS, ids[0], now=now) == Tier.OPEN
    admin = Principal(kind="user", id=user.id, role="admin")
    assert set(clearances_for(db, admin, ids, now=now).values()) == {Tier.INTERNAL}
    partner.disabled_at = now
    db.flush()
    assert clearance_for(db, as_partner, ids[1], now=now) == Tier.OPEN
