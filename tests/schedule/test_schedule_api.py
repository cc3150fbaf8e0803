from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import IssuedToken, Release, Stage, Transition
from tests.factories.access import audit_events, enqueued, issued_token, researcher, subscribe
from tests.factories.catalogue import check, publish_release

BASE = "/v1/models/acme/atlas-7b/releases/v1/components/weights/schedule"
MANIFEST = "/v1/models/acme/atlas-7b/releases/v1/manifest"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture
def t0(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> datetime:
    """weights: partner at T+1d, research at T+2d, open at T+3d; config open since T-1d."""
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        components={
            "weights": [
                ("partner", now + timedelta(days=1)),
                ("research", now + timedelta(days=2)),
                ("open", now + timedelta(days=3)),
            ],
            "config": [("open", now - timedelta(days=1))],
        },
        files={"w.bin": ("weights", b"w"), "config.json": ("config", b"{}")},
    )
    return now


def sched(client: TestClient, headers: dict[str, str]) -> Any:
    return check(client.get(BASE, headers=headers), 200)


def stages(body: Any) -> list[tuple[str, str, str]]:
    return [(s["tier"], s["at"], s["state"]) for s in body["stages"]]


def put(client: TestClient, headers: dict[str, str], schedule: list[tuple[str, datetime]]) -> Any:
    return client.put(
        BASE,
        json={"schedule": [{"tier": t, "at": iso(at)} for t, at in schedule], "reason": "test"},
        headers=headers,
    )


def files(client: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    return [f["path"] for f in check(client.get(MANIFEST, headers=headers or {}), 200)["files"]]


def test_schedule_reads_with_stage_states(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, t0: datetime
) -> None:
    clock.set(t0 + timedelta(days=1, hours=1))
    body = sched(client, admin_headers)
    assert body["tier"] == "partner"
    assert body["next"] == {"tier": "research", "at": iso(t0 + timedelta(days=2))}
    assert stages(body) == [
        ("partner", iso(t0 + timedelta(days=1)), "past"),
        ("research", iso(t0 + timedelta(days=2)), "upcoming"),
        ("open", iso(t0 + timedelta(days=3)), "upcoming"),
    ]
    assert body["held"] is False
    assert body["restricted_tier"] is None


def test_schedule_routes_are_admin_only(
    client: TestClient, db: Session, clock: FixedClock, t0: datetime
) -> None:
    _, headers = researcher(db, clock)
    calls: list[tuple[str, str, dict[str, object] | None]] = [
        ("GET", "", None),
        ("PUT", "", {"schedule": []}),
        ("POST", "/hold", {"reason": "x"}),
        ("POST", "/resume", {}),
        ("POST", "/lift", {}),
        ("POST", "/restrict", {"tier": "internal", "reason": "x"}),
    ]
    for method, suffix, body in calls:
        r = client.request(method, BASE + suffix, json=body, headers=headers)
        assert r.status_code == 403, (method, suffix)
        assert r.json()["code"] == "admin_required"
    assert client.get("/v1/embargoes", headers=headers).status_code == 403


def test_unknown_targets_are_404(
    client: TestClient, admin_headers: dict[str, str], t0: datetime
) -> None:
    for path, code in [
        ("/v1/models/acme/nope/releases/v1/components/weights/schedule", "model_not_found"),
        ("/v1/models/acme/atlas-7b/releases/v9/components/weights/schedule", "release_not_found"),
        ("/v1/models/acme/atlas-7b/releases/v1/components/nope/schedule", "component_not_found"),
    ]:
        r = client.get(path, headers=admin_headers)
        assert r.status_code == 404
        assert r.json()["code"] == code


def test_reschedule_replaces_future_stages_and_is_audited(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock, t0: datetime
) -> None:
    subscribe(db, clock, ["embargo.rescheduled"])
    clock.set(t0 + timedelta(days=1, hours=1))
    new = [
        ("partner", t0 + timedelta(days=1)),
        ("research", t0 + timedelta(days=5)),
        ("open", t0 + timedelta(days=9)),
    ]
    body = check(put(client, admin_headers, new), 200)
    assert stages(body) == [
        ("partner", iso(t0 + timedelta(days=1)), "past"),
        ("research", iso(t0 + timedelta(days=5)), "upcoming"),
        ("open", iso(t0 + timedelta(days=9)), "upcoming"),
    ]
    event = audit_events(db, "schedule.rescheduled")[-1]
    assert event.target_id == "acme/atlas-7b@v1/weights"
    assert event.before is not None
    assert event.after is not None
    assert [s["at"] for s in event.before["schedule"]][1] == (t0 + timedelta(days=2)).isoformat()
    assert [s["at"] for s in event.after["schedule"]][1] == (t0 + timedelta(days=5)).isoformat()
    assert event.data == {"reason": "test"}
    (hook,) = enqueued(db, "embargo.rescheduled")
    assert hook["data"]["component"] == "weights"
    assert hook["data"]["tier"] == "partner"
    assert len(hook["data"]["schedule"]) == 3
    # The stage kept unchanged is the same row (its reminder state survives).
    kept = db.scalars(select(Stage).where(Stage.tier == "partner", Stage.at == new[0][1])).all()
    assert len(kept) == 1
    # Unchanged schedule: nothing written.
    check(put(client, admin_headers, new), 200)
    assert len(audit_events(db, "schedule.rescheduled")) == 1


@pytest.mark.parametrize(
    ("schedule", "code", "words"),
    [
        # Dropping the partner stage that already took effect.
        ([("research", 5), ("open", 9)], "stage_in_past", "already taken effect"),
        # Moving it.
        ([("partner", 1.01), ("research", 5)], "stage_in_past", "already taken effect"),
        # A new stage in the past.
        ([("partner", 1), ("research", 1.02)], "stage_in_past", "in the past"),
        # Times not increasing.
        ([("partner", 1), ("research", 5), ("open", 4)], "invalid_schedule", "must be later"),
        # A stage that does not open further.
        ([("partner", 1), ("research", 5), ("partner", 6)], "invalid_schedule", "open further"),
    ],
)
def test_invalid_reschedules_are_refused_with_422(
    client: TestClient,
    admin_headers: dict[str, str],
    clock: FixedClock,
    t0: datetime,
    schedule: list[tuple[str, float]],
    code: str,
    words: str,
) -> None:
    clock.set(t0 + timedelta(days=1, hours=1))
    r = put(client, admin_headers, [(t, t0 + timedelta(days=d)) for t, d in schedule])
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert words in r.json()["detail"]
    assert len(sched(client, admin_headers)["stages"]) == 3  # nothing changed


def test_hold_freezes_and_resume_applies_overdue_stages(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock, t0: datetime
) -> None:
    subscribe(db, clock, ["embargo.held", "embargo.resumed"])
    clock.set(t0 + timedelta(days=1, hours=1))
    missing = client.post(BASE + "/hold", json={}, headers=admin_headers)
    assert missing.status_code == 422
    blank = client.post(BASE + "/hold", json={"reason": ""}, headers=admin_headers)
    assert blank.status_code == 422
    held = check(
        client.post(BASE + "/hold", json={"reason": "safety review"}, headers=admin_headers), 200
    )
    assert held["held"] is True
    assert held["hold_reason"] == "safety review"
    assert held["next"] is None
    assert [s["state"] for s in held["stages"]] == ["past", "held", "held"]
    twice = client.post(BASE + "/hold", json={"reason": "again"}, headers=admin_headers)
    assert twice.status_code == 409
    assert twice.json()["code"] == "already_held"
    clock.set(t0 + timedelta(days=3, hours=1))
    assert sched(client, admin_headers)["tier"] == "partner"
    assert files(client) == ["config.json", "signatures/config.sig"]  # open passed, but held
    lift = client.post(BASE + "/lift", json={}, headers=admin_headers)
    assert lift.status_code == 409
    assert lift.json()["code"] == "schedule_held"
    resumed = check(
        client.post(BASE + "/resume", json={"reason": "cleared"}, headers=admin_headers), 200
    )
    assert resumed["held"] is False
    assert resumed["tier"] == "open"
    assert files(client) == [
        "config.json",
        "signatures/config.sig",
        "signatures/weights.sig",
        "w.bin",
    ]
    nothing = client.post(BASE + "/resume", headers=admin_headers)
    assert nothing.status_code == 409
    assert nothing.json()["code"] == "not_held"
    (h,) = enqueued(db, "embargo.held")
    assert h["data"]["reason"] == "safety review"
    assert h["data"]["tier"] == "partner"
    (r,) = enqueued(db, "embargo.resumed")
    assert r["data"]["tier"] == "open"
    assert r["data"]["was_held"] is True
    kinds = db.scalars(select(Transition.kind).order_by(Transition.id)).all()
    assert kinds == ["held", "resumed"]
    assert audit_events(db, "schedule.held")[-1].after["held"] is True  # type: ignore[index]


def test_lift_now_defaults_to_the_next_stage(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock, t0: datetime
) -> None:
    clock.set(t0 + timedelta(hours=1))
    body = check(client.post(BASE + "/lift", headers=admin_headers), 200)
    assert body["tier"] == "partner"
    assert stages(body) == [
        ("partner", iso(clock.now()), "past"),
        ("research", iso(t0 + timedelta(days=2)), "upcoming"),
        ("open", iso(t0 + timedelta(days=3)), "upcoming"),
    ]
    event = audit_events(db, "schedule.lifted")[-1]
    assert event.data["tier"] == "partner"
    assert event.data["dropped"] == [
        {"tier": "partner", "at": (t0 + timedelta(days=1)).isoformat()}
    ]
    # Not recorded yet: the scheduler's claimer records the new stage as a lift.
    row = db.scalar(select(Stage).where(Stage.at == clock.now()))
    assert row is not None
    assert row.transitioned_at is None


def test_lift_to_a_tier_drops_stages_that_no_longer_open_further(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, t0: datetime
) -> None:
    clock.set(t0 + timedelta(hours=1))
    assert files(client) == ["config.json", "signatures/config.sig"]
    body = check(
        client.post(
            BASE + "/lift", json={"tier": "research", "reason": "early"}, headers=admin_headers
        ),
        200,
    )
    assert [(s["tier"], s["state"]) for s in body["stages"]] == [
        ("research", "past"),
        ("open", "upcoming"),
    ]
    same = client.post(BASE + "/lift", json={"tier": "research"}, headers=admin_headers)
    assert same.status_code == 422
    assert same.json()["code"] == "not_more_open"
    clock.advance(1)
    check(client.post(BASE + "/lift", json={"tier": "open"}, headers=admin_headers), 200)
    assert files(client) == [
        "config.json",
        "signatures/config.sig",
        "signatures/weights.sig",
        "w.bin",
    ]
    clock.advance(1)
    done = client.post(BASE + "/lift", headers=admin_headers)
    assert done.status_code == 422
    assert done.json()["code"] == "nothing_to_lift"


def test_restrict_caps_the_tier_and_revokes_tokens_above_it(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock, t0: datetime
) -> None:
    subscribe(db, clock, ["embargo.restricted"])
    clock.set(t0 + timedelta(days=3, hours=1))
    assert files(client) == [
        "config.json",
        "signatures/config.sig",
        "signatures/weights.sig",
        "w.bin",
    ]
    release_id = db.scalar(select(Release.id).where(Release.version == "v1"))
    tokens = {
        tier: issued_token(db, clock, release_id=release_id, tier=tier)
        for tier in ("internal", "partner", "research", "open")
    }
    no_reason = client.post(BASE + "/restrict", json={"tier": "partner"}, headers=admin_headers)
    assert no_reason.status_code == 422
    to_open = client.post(
        BASE + "/restrict", json={"tier": "open", "reason": "x"}, headers=admin_headers
    )
    assert to_open.status_code == 422
    assert to_open.json()["code"] == "invalid_restriction"
    body = check(
        client.post(
            BASE + "/restrict", json={"tier": "partner", "reason": "leak"}, headers=admin_headers
        ),
        200,
    )
    assert body["tier"] == "partner"
    assert body["restricted_tier"] == "partner"
    assert body["restrict_reason"] == "leak"
    assert body["tokens_revoked"] == 2
    assert files(client) == ["config.json", "signatures/config.sig"]
    db.expire_all()
    revoked = {t: db.get(IssuedToken, row.jti).revoked_at is not None for t, row in tokens.items()}  # type: ignore[union-attr]
    assert revoked == {"internal": False, "partner": False, "research": True, "open": True}
    (hook,) = enqueued(db, "embargo.restricted")
    assert hook["data"]["reason"] == "leak"
    assert hook["data"]["tier"] == "partner"
    # Loosen the ceiling, then end the restriction.
    looser = check(
        client.post(
            BASE + "/restrict",
            json={"tier": "research", "reason": "partly fixed"},
            headers=admin_headers,
        ),
        200,
    )
    assert looser["tier"] == "research"
    resumed = check(client.post(BASE + "/resume", headers=admin_headers), 200)
    assert resumed["restricted_tier"] is None
    assert resumed["tier"] == "open"
    event = audit_events(db, "schedule.restricted")[0]
    assert event.before["tier"] == "open"  # type: ignore[index]
    assert event.after["tier"] == "partner"  # type: ignore[index]
    assert event.data == {"reason": "leak", "ceiling": "partner", "tokens_revoked": 2}


def test_restricting_caps_future_stages(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, t0: datetime
) -> None:
    clock.set(t0 + timedelta(days=1, hours=1))
    body = check(
        client.post(
            BASE + "/restrict",
            json={"tier": "research", "reason": "no open"},
            headers=admin_headers,
        ),
        200,
    )
    assert [s["state"] for s in body["stages"]] == ["past", "upcoming", "capped"]
    past_ceiling = client.post(BASE + "/lift", json={"tier": "open"}, headers=admin_headers)
    assert past_ceiling.status_code == 409
    assert past_ceiling.json()["code"] == "component_restricted"
    within = check(
        client.post(BASE + "/lift", json={"tier": "research"}, headers=admin_headers), 200
    )
    assert within["tier"] == "research"
    clock.set(t0 + timedelta(days=4))
    later = sched(client, admin_headers)
    assert later["tier"] == "research"
    assert later["next"] is None


def test_a_lift_now_is_recorded_by_the_claimer_and_then_immutable(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock, t0: datetime
) -> None:
    from app.schedule.claimer import claim_due_transitions

    subscribe(db, clock, ["embargo.lifted"])
    clock.set(t0 + timedelta(hours=1))
    check(client.post(BASE + "/lift", json={"tier": "research"}, headers=admin_headers), 200)
    recorded = claim_due_transitions(db, now=clock.now(), replica="test")
    db.commit()
    # config's own (long past) open stage is recorded too; ours is the one at "now".
    assert sorted((t.kind, t.tier, t.at == clock.now()) for t in recorded) == [
        ("lifted", "open", False),
        ("lifted", "research", True),
    ]
    hooks = {h["data"]["component"]: h["data"] for h in enqueued(db, "embargo.lifted")}
    assert hooks["weights"]["tier"] == "research"
    assert hooks["weights"]["previous_tier"] == "internal"
    body = sched(client, admin_headers)
    assert body["stages"][0]["recorded_at"] == iso(clock.now())
    # Recorded stages are history, even if their time were moved to the future.
    clock.advance(1)
    moved = put(client, admin_headers, [("research", clock.now() + timedelta(days=1))])
    assert moved.status_code == 422
    assert moved.json()["code"] == "stage_in_past"
    # And the claimer records nothing twice.
    assert claim_due_transitions(db, now=clock.now(), replica="other") == []


def test_relative_times_are_resolved_once_and_echoed_as_utc(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, t0: datetime
) -> None:
    clock.set(t0 + timedelta(hours=1))
    now = clock.now()
    body = {
        "schedule": [{"tier": "partner", "at": "+2h"}, {"tier": "open", "at": "+1d12h"}],
        "reason": "typed by a person",
    }
    out = check(client.put(BASE, json=body, headers=admin_headers), 200)
    assert stages(out) == [
        ("partner", iso(now + timedelta(hours=2)), "upcoming"),
        ("open", iso(now + timedelta(days=1, hours=12)), "upcoming"),
    ]
    # Stored as absolute times: reading later does not move them.
    clock.advance(minutes=30)
    assert stages(sched(client, admin_headers)) == stages(out)


@pytest.mark.parametrize(
    ("at", "words"),
    [
        ("+2", "is not a relative time"),
        ("+2h30d", "largest unit first"),
        ("+36526d", "too far ahead"),
        ("2027-01-01T00:00:00", "has no time zone"),
        ("9999-12-31T23:59:59-14:00", "between 1900 and 9000"),
        ("tomorrow", "is not an ISO 8601 date-time"),
    ],
)
def test_unreadable_times_are_refused_with_422(
    client: TestClient, admin_headers: dict[str, str], t0: datetime, at: str, words: str
) -> None:
    body = {"schedule": [{"tier": "open", "at": at}]}
    r = client.put(BASE, json=body, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.text
    assert len(sched(client, admin_headers)["stages"]) == 3  # nothing changed


def test_restricting_one_component_revokes_only_the_tokens_it_closes(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock, t0: datetime
) -> None:
    """Regression (#17): a researcher's token for the config survives an emergency
    restriction of the weights; tokens covering the weights (by component, by path, or
    together with the config) are revoked, and only those."""
    clock.set(t0 + timedelta(days=3, hours=1))  # everything is open
    _, headers = researcher(db, clock)

    def token(**body: Any) -> dict[str, Any]:
        out = check(
            client.post("/v1/tokens", json={"model": "acme/atlas-7b", **body}, headers=headers),
            201,
        )
        assert out["tier"] == "open"
        return out  # type: ignore[no-any-return]

    config = token(components=["config"])
    weights = token(components=["weights"])
    by_path = token(paths=["w.bin"])
    both = token(components=["config", "weights"])
    config_path = token(paths=["config.json"])
    body = check(
        client.post(
            BASE + "/restrict", json={"tier": "partner", "reason": "leak"}, headers=admin_headers
        ),
        200,
    )
    assert body["tokens_revoked"] == 3
    db.expire_all()
    revoked = {
        name: db.get(IssuedToken, t["jti"]).revoked_reason  # type: ignore[union-attr]
        for name, t in {
            "config": config,
            "weights": weights,
            "by_path": by_path,
            "both": both,
            "config_path": config_path,
        }.items()
    }
    closed = "component weights restricted to partner"
    assert revoked == {
        "config": None,
        "weights": closed,
        "by_path": closed,
        "both": closed,
        "config_path": None,
    }
    # The config tokens still download; a weights token is refused as revoked.
    ok = client.get("/v1/files/acme/atlas-7b/v1/config.json", params={"token": config["token"]})
    assert (ok.status_code, ok.content) == (200, b"{}")
    gone = client.get("/v1/files/acme/atlas-7b/v1/w.bin", params={"token": weights["token"]})
    assert gone.status_code == 401
    assert gone.json()["code"] == "token_revoked"
    # A second restriction of the weights finds nothing more to close.
    again = client.post(
        BASE + "/restrict", json={"tier": "internal", "reason": "worse"}, headers=admin_headers
    )
    assert check(again, 200)["tokens_revoked"] == 0
