"""The claimer records each due lift once, with its audit event and its outbox rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.verify import verify_chain
from app.clock import FixedClock
from app.models import AuditEvent, Stage, Transition, WebhookDelivery
from app.schedule.claimer import claim_due_transitions, lift_event_id
from tests.factories.schedules import make_component, make_release, make_subscription


def lifts(db: Session) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent).where(AuditEvent.action == "embargo.lifted").order_by(AuditEvent.id)
        )
    )


def test_due_stage_is_recorded_once_with_audit_and_one_outbox_row_per_subscriber(
    db: Session, clock: FixedClock
) -> None:
    now = clock.now()
    _, rel = make_release(db, now, model="acme/atlas-7b")
    _, (stage,) = make_component(
        db, now, release=rel, name="weights", stages=[("partner", now - timedelta(seconds=3))]
    )
    lifted_sub = make_subscription(db, now, events=["embargo.lifted"])
    everything = make_subscription(db, now, url="https://b.example/h", events=["*"])
    make_subscription(db, now, url="https://c.example/h", events=["access.approved"])

    recorded = claim_due_transitions(db, now=now, replica="r1", limit=10)

    assert [(t.stage_id, t.kind, t.tier, t.at, t.recorded_at, t.recorded_by) for t in recorded] == [
        (stage.id, "lifted", "partner", stage.at, now, "r1")
    ]
    db.refresh(stage)
    assert stage.transitioned_at == now
    (event,) = lifts(db)
    assert event.actor == "system:scheduler"
    assert event.target_type == "component"
    assert event.target_id == "acme/atlas-7b@v1/weights"
    assert event.before == {"tier": "internal"}
    assert event.after == {"tier": "partner"}
    assert event.data["stage_id"] == stage.id
    assert event.data["transition_id"] == recorded[0].id
    deliveries = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [d.subscription_id for d in deliveries] == [lifted_sub.id, everything.id]
    assert {d.event_id for d in deliveries} == {lift_event_id(stage)}
    assert deliveries[0].payload == {
        "id": lift_event_id(stage),
        "type": "embargo.lifted",
        "created_at": now.isoformat(),
        "data": {
            "model": "acme/atlas-7b",
            "version": "v1",
            "component": "weights",
            "tier": "partner",
            "previous_tier": "internal",
            "at": stage.at.isoformat(),
        },
    }
    assert all(d.status == "pending" and d.next_attempt_at == now for d in deliveries)

    # A second claimer (or the same one again) finds nothing left to do.
    assert claim_due_transitions(db, now=now + timedelta(seconds=5), replica="r2") == []
    assert len(lifts(db)) == 1
    assert db.scalar(select(func.count()).select_from(WebhookDelivery)) == 2
    assert verify_chain(db).ok


def test_only_stages_whose_time_has_come_are_claimed_in_time_order(
    db: Session, clock: FixedClock
) -> None:
    now = clock.now()
    _, rel = make_release(db, now)
    _, stages = make_component(
        db,
        now,
        release=rel,
        stages=[
            ("partner", now - timedelta(hours=2)),
            ("research", now + timedelta(minutes=1)),
            ("open", now + timedelta(days=30)),
        ],
    )
    first = claim_due_transitions(db, now=now, replica="r")
    assert [t.tier for t in first] == ["partner"]
    # Two hours late: the lag shows in recorded_at - at.
    assert first[0].recorded_at - first[0].at == timedelta(hours=2)

    assert claim_due_transitions(db, now=now + timedelta(seconds=59), replica="r") == []
    second = claim_due_transitions(db, now=now + timedelta(seconds=60), replica="r")
    assert [(t.tier, t.at) for t in second] == [("research", stages[1].at)]
    (event,) = [e for e in lifts(db) if e.after == {"tier": "research"}]
    assert event.before == {"tier": "partner"}


def test_limit_bounds_a_batch_and_the_rest_stay_due(db: Session, clock: FixedClock) -> None:
    now = clock.now()
    _, rel = make_release(db, now)
    for i in range(5):
        make_component(db, now, release=rel, stages=[("open", now - timedelta(minutes=5 - i))])
    batch = claim_due_transitions(db, now=now, replica="r", limit=2)
    assert len(batch) == 2
    assert [t.at for t in batch] == sorted(t.at for t in batch)
    rest = claim_due_transitions(db, now=now, replica="r", limit=10)
    assert len(rest) == 3
    assert {t.stage_id for t in batch}.isdisjoint({t.stage_id for t in rest})


def test_draft_releases_are_not_announced_until_published(db: Session, clock: FixedClock) -> None:
    now = clock.now()
    _, rel = make_release(db, now, published=False)
    make_component(db, now, release=rel, stages=[("open", now - timedelta(minutes=1))])
    assert claim_due_transitions(db, now=now, replica="r") == []
    rel.status = "published"
    rel.published_at = now
    db.flush()
    assert [t.tier for t in claim_due_transitions(db, now=now, replica="r")] == ["open"]


def test_a_hold_stops_later_stages_but_not_those_before_it(db: Session, clock: FixedClock) -> None:
    now = clock.now()
    _, rel = make_release(db, now)
    comp, stages = make_component(
        db,
        now,
        release=rel,
        stages=[("partner", now - timedelta(hours=3)), ("research", now - timedelta(hours=1))],
        held_at=now - timedelta(hours=2),
    )
    # The partner stage happened before the hold: it is a real lift, recorded (late).
    assert [t.stage_id for t in claim_due_transitions(db, now=now, replica="r")] == [stages[0].id]
    assert claim_due_transitions(db, now=now, replica="r") == []
    # Resumed: the research stage takes effect now and is recorded now.
    comp.held_at = None
    db.flush()
    assert [t.stage_id for t in claim_due_transitions(db, now=now, replica="r")] == [stages[1].id]


def test_a_stage_above_the_emergency_ceiling_waits_for_the_restriction_to_end(
    db: Session, clock: FixedClock
) -> None:
    now = clock.now()
    _, rel = make_release(db, now)
    comp, (partner, research) = make_component(
        db,
        now,
        release=rel,
        stages=[("partner", now - timedelta(hours=3)), ("research", now - timedelta(hours=1))],
        restricted_tier="partner",
    )
    # partner is within the ceiling (it really opened the component); research is not.
    assert [t.stage_id for t in claim_due_transitions(db, now=now, replica="r")] == [partner.id]
    assert claim_due_transitions(db, now=now + timedelta(hours=1), replica="r") == []
    later = now + timedelta(hours=2)
    comp.restricted_tier = None
    db.flush()
    (t,) = claim_due_transitions(db, now=later, replica="r")
    assert (t.stage_id, t.tier, t.recorded_at) == (research.id, "research", later)


def test_compare_and_set_refuses_a_stage_someone_else_just_recorded(
    db: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claimer whose candidate list is stale (another claimer committed in between, which
    SKIP LOCKED cannot prevent on SQLite) records nothing for that stage."""
    now = clock.now()
    _, rel = make_release(db, now)
    _, (stage,) = make_component(db, now, release=rel, stages=[("open", now)])

    real_scalars = db.scalars

    def racing_scalars(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Just before our compare-and-set runs, the other replica wins the race.
        if getattr(statement, "is_update", False) and statement.table.name == "stages":
            db.execute(update(Stage).where(Stage.id == stage.id).values(transitioned_at=now))
        return real_scalars(statement, *args, **kwargs)

    monkeypatch.setattr(db, "scalars", racing_scalars)
    assert claim_due_transitions(db, now=now, replica="late") == []
    monkeypatch.undo()
    assert db.scalar(select(func.count()).select_from(Transition)) == 0
    assert lifts(db) == []


def test_the_unique_stage_id_is_the_last_backstop(db: Session, clock: FixedClock) -> None:
    now = clock.now()
    _, rel = make_release(db, now)
    comp, (stage,) = make_component(db, now, release=rel, stages=[("open", now)])
    # An inconsistent row pair (transition written, stage not marked): the insert must fail
    # rather than record the lift a second time.
    db.add(
        Transition(
            stage_id=stage.id,
            component_id=comp.id,
            kind="lifted",
            tier="open",
            at=now,
            recorded_at=now,
            recorded_by="other",
        )
    )
    db.flush()
    with db.begin_nested(), pytest.raises(IntegrityError):
        claim_due_transitions(db, now=now, replica="r")


def test_event_ids_are_deterministic_per_stage(db: Session, clock: FixedClock) -> None:
    now = clock.now()
    _, rel = make_release(db, now)
    _, (a, b) = make_component(
        db, now, release=rel, stages=[("partner", now), ("open", now + timedelta(days=1))]
    )
    assert lift_event_id(a) == lift_event_id(a)
    assert lift_event_id(a) != lift_event_id(b)
    assert lift_event_id(a).startswith("evt_")
    assert len(lift_event_id(a)) <= 64  # fits webhook_deliveries.event_id
