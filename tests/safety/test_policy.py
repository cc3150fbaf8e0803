"""The automatic hold policy, in process with the fixed clock: K distinct reporters with
access, severity S, a next stage within W hours; one reporter counts once; reports from
outsiders, withdrawn and dismissed ones count for nothing; the hold stays until an admin
resumes, and only then does the stage take effect and get recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import FixedClock
from app.models import Grant, Model, Transition
from app.safety.sweep import sweep_pass
from app.schedule.claimer import claim_due_transitions
from tests.factories.access import audit_events, enqueued, researcher, subscribe
from tests.factories.catalogue import check, publish_release

MODEL = "acme/guarded"
SCHEDULE = f"/v1/models/{MODEL}/releases/v1/components/weights/schedule"
POLICY = f"/v1/models/{MODEL}/safety-policy"


@dataclass
class Guarded:
    client: TestClient
    db: Session
    clock: FixedClock
    admin: dict[str, str]
    researchers: list[dict[str, str]]
    outsider: dict[str, str]

    def report(self, who: dict[str, str], status: int = 201, **fields: Any) -> Any:
        body = {
            "version": "v1",
            "components": ["weights"],
            "category": "harmful_capability",
            "severity": "high",
            "description": "walks through a dangerous procedure",
            **fields,
        }
        return check(
            self.client.post(f"/v1/models/{MODEL}/reports", json=body, headers=who), status
        )

    def set_policy(self, **fields: Any) -> Any:
        body = {"enabled": True, "min_reporters": 3, "min_severity": "high", "window_hours": 24}
        return check(self.client.put(POLICY, json={**body, **fields}, headers=self.admin), 200)

    def schedule(self) -> Any:
        return check(self.client.get(SCHEDULE, headers=self.admin), 200)

    def token(self, who: dict[str, str] | None, status: int) -> Any:
        body = {"model": MODEL, "components": ["weights"]}
        return check(self.client.post("/v1/tokens", json=body, headers=who or {}), status)


@pytest.fixture
def guarded(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> Guarded:
    """``weights``: research since yesterday, open in two hours; four researchers with a
    grant, one without."""
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        model=MODEL,
        components={
            "weights": [("research", now - timedelta(days=1)), ("open", now + timedelta(hours=2))]
        },
    )
    model_id = db.scalar(select(Model.id).where(Model.name == "guarded"))
    heads = []
    for _ in range(4):
        user, headers = researcher(db, clock)
        db.add(Grant(user_id=user.id, model_id=model_id, created_at=now))
        heads.append(headers)
    _, outsider = researcher(db, clock)
    db.commit()
    return Guarded(client, db, clock, admin_headers, heads, outsider)


def test_the_policy_is_off_by_default(guarded: Guarded) -> None:
    got = check(guarded.client.get(POLICY, headers=guarded.admin), 200)
    assert got == {
        "model": MODEL,
        "enabled": False,
        "min_reporters": 3,
        "min_severity": "high",
        "window_hours": 72,
        "updated_at": None,
        "updated_by": None,
        "holds": [],
    }
    for who in guarded.researchers:
        guarded.report(who, severity="critical")
    assert guarded.schedule()["held"] is False


def test_k_distinct_reporters_with_access_hold_the_next_stage(
    guarded: Guarded, db: Session, clock: FixedClock, session_factory: sessionmaker[Session]
) -> None:
    subscribe(db, clock, ["component.held", "embargo.held"])
    with session_factory() as s:  # the research stage, past already, is on record
        assert [t.tier for t in claim_due_transitions(s, now=clock.now(), replica="t")] == [
            "research"
        ]
        s.commit()
    guarded.set_policy()
    r1, r2, r3, r4 = guarded.researchers
    first = guarded.report(r1)
    guarded.report(r1, severity="critical")  # the same reporter again: still one
    second = guarded.report(r2)
    guarded.report(guarded.outsider, 404)  # no access: not even filed
    guarded.report(r3, severity="medium")  # below the policy's severity
    assert guarded.schedule()["held"] is False
    third = guarded.report(r3, severity="critical")
    sched = guarded.schedule()
    assert sched["held"] is True
    assert sched["held_by"] == "system:safety-policy"
    reason = sched["hold_reason"]
    assert reason.startswith("safety policy: 3 reporters with access have open reports")
    assert f"(#{first['id']}, #{second['id']}, #{third['id']})" in reason
    assert [s["state"] for s in sched["stages"]] == ["past", "held"]

    guarded.report(r4, severity="critical")  # a fourth: no second hold
    (held,) = audit_events(db, "schedule.held")
    assert held.actor == "system:safety-policy"
    assert held.data["reports"] == [first["id"], second["id"], third["id"]]
    (event,) = enqueued(db, "component.held")
    assert event["data"]["by"] == "safety_policy"
    assert event["data"]["held_stage"]["tier"] == "open"
    assert event["data"]["reports"] == [first["id"], second["id"], third["id"]]
    assert enqueued(db, "embargo.held") == []  # announced once, as component.held

    holds = check(guarded.client.get("/v1/holds", headers=guarded.admin), 200)["items"]
    assert [(h["component"], h["held_by"]) for h in holds] == [("weights", "system:safety-policy")]
    assert holds[0]["waiting"]["tier"] == "open"
    upcoming = check(guarded.client.get("/v1/embargoes", headers=guarded.admin), 200)["items"]
    assert [(e["tier"], e["state"], e["held_by"]) for e in upcoming] == [
        ("open", "held", "system:safety-policy")
    ]
    policy = check(guarded.client.get(POLICY, headers=guarded.admin), 200)
    assert [(h["component"], h["active"], h["stage_tier"]) for h in policy["holds"]] == [
        ("weights", True, "open")
    ]

    # The stage's time comes: it does not take effect, and nothing records it.
    clock.advance(hours=3)
    refused = guarded.token(guarded.outsider, 403)
    assert refused["code"] == "component_held"
    assert "resume" in refused["detail"]
    assert "safety" not in refused["detail"]  # the reason stays with admins
    guarded.token(r1, 201)  # research access is untouched
    with session_factory() as s:
        assert claim_due_transitions(s, now=clock.now(), replica="t") == []
        s.commit()

    # An admin resumes: the stage takes effect now and is recorded once.
    resumed = check(guarded.client.post(SCHEDULE + "/resume", headers=guarded.admin), 200)
    assert (resumed["held"], resumed["held_by"], resumed["tier"]) == (False, None, "open")
    with session_factory() as s:
        assert len(claim_due_transitions(s, now=clock.now(), replica="t")) == 1
        assert claim_due_transitions(s, now=clock.now(), replica="t") == []
        s.commit()
    lifted = db.scalars(select(Transition).where(Transition.kind == "lifted")).all()
    assert [t.tier for t in lifted].count("open") == 1
    guarded.token(guarded.outsider, 201)
    # Reports still open cannot hold the stage the admin let through.
    guarded.report(r4)
    assert guarded.schedule()["held"] is False
    assert len(audit_events(db, "schedule.held")) == 1


def test_withdrawn_dismissed_and_revoked_reporters_stop_counting(
    guarded: Guarded, db: Session
) -> None:
    guarded.set_policy()
    r1, r2, r3, r4 = guarded.researchers
    withdrawn = guarded.report(r1)
    check(guarded.client.post(f"/v1/reports/{withdrawn['id']}/withdraw", headers=r1), 200)
    dismissed = guarded.report(r2)
    check(
        guarded.client.patch(
            f"/v1/reports/{dismissed['id']}", json={"status": "dismissed"}, headers=guarded.admin
        ),
        200,
    )
    guarded.report(r3)
    guarded.report(r4)
    assert guarded.schedule()["held"] is False  # r3 and r4 only
    # r1 reports afresh: an open report of theirs counts again.
    guarded.report(r1)
    assert guarded.schedule()["held"] is True
    check(guarded.client.post(SCHEDULE + "/resume", headers=guarded.admin), 200)


def test_a_revoked_reporter_does_not_count(guarded: Guarded, db: Session) -> None:
    guarded.set_policy()
    r1, r2, r3, _ = guarded.researchers
    guarded.report(r1)
    guarded.report(r2)
    me = check(guarded.client.get("/v1/me", headers=r1), 200)
    check(
        guarded.client.delete(f"/v1/models/{MODEL}/grants/{me['id']}", headers=guarded.admin),
        204,
    )
    guarded.report(r3)
    assert guarded.schedule()["held"] is False


def test_a_hold_stays_when_its_reports_are_withdrawn(guarded: Guarded) -> None:
    guarded.set_policy(min_reporters=2)
    ids = [(guarded.report(who)["id"], who) for who in guarded.researchers[:2]]
    assert guarded.schedule()["held"] is True
    for rid, who in ids:
        check(guarded.client.post(f"/v1/reports/{rid}/withdraw", headers=who), 200)
    assert guarded.schedule()["held"] is True


def test_a_stage_outside_the_window_is_held_when_it_comes_within(
    guarded: Guarded, clock: FixedClock, session_factory: sessionmaker[Session]
) -> None:
    guarded.set_policy(min_reporters=2, window_hours=1)  # the stage is two hours away
    for who in guarded.researchers[:2]:
        guarded.report(who)
    assert guarded.schedule()["held"] is False
    assert sweep_pass(session_factory, clock=clock) == 0
    clock.advance(minutes=61)
    assert sweep_pass(session_factory, clock=clock) == 1
    assert guarded.schedule()["held_by"] == "system:safety-policy"
    assert sweep_pass(session_factory, clock=clock) == 0


def test_turning_the_policy_on_applies_it_to_open_reports(guarded: Guarded, db: Session) -> None:
    for who in guarded.researchers[:3]:
        guarded.report(who)
    assert guarded.schedule()["held"] is False
    out = guarded.set_policy()
    assert out["enabled"] is True
    assert out["updated_by"].startswith("user:")
    assert [h["active"] for h in out["holds"]] == [True]
    assert guarded.schedule()["held"] is True
    (event,) = audit_events(db, "safety.policy.updated")
    assert event.before is None
    assert event.after == {
        "enabled": True,
        "min_reporters": 3,
        "min_severity": "high",
        "window_hours": 24,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"enabled": True, "min_reporters": 0},
        {"enabled": True, "min_severity": "huge"},
        {"enabled": True, "window_hours": 0},
        {"enabled": True, "window_hours": 10**9},
        {"min_reporters": 3},
        {"enabled": True, "k": 3},
    ],
)
def test_bad_policies_are_refused(guarded: Guarded, body: dict[str, Any]) -> None:
    assert guarded.client.put(POLICY, json=body, headers=guarded.admin).status_code == 422
    assert check(guarded.client.get(POLICY, headers=guarded.admin), 200)["enabled"] is False


def test_only_admins_see_or_set_a_policy(guarded: Guarded) -> None:
    who = guarded.researchers[0]
    assert guarded.client.get(POLICY, headers=who).status_code == 403
    assert guarded.client.put(POLICY, json={"enabled": True}, headers=who).status_code == 403
    gone = guarded.client.get("/v1/models/acme/none/safety-policy", headers=guarded.admin)
    assert gone.json()["code"] == "model_not_found"
