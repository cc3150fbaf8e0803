"""Admins' triage: the queue and its filters, status changes with notes the reporter sees,
duplicates, and holding a component straight from a report."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.factories.access import audit_events, enqueued, subscribe
from tests.factories.catalogue import check
from tests.safety.conftest import file_report
from tests.tokens.world import MODEL, World

SCHEDULE = f"/v1/models/{MODEL}/releases/v1/components/{{}}/schedule"


def patch(world: World, rid: int, expect: int = 200, **body: object) -> dict[str, object]:
    out = check(world.client.patch(f"/v1/reports/{rid}", json=body, headers=world.admin), expect)
    assert isinstance(out, dict)
    return out


def test_triage_with_a_note_the_reporter_sees(world: World, db: Session, clock: FixedClock) -> None:
    subscribe(db, clock, ["safety.report.updated"])
    made = file_report(world, world.researcher)
    clock.advance(hours=3)
    out = patch(world, made["id"], status="triaged", note="reproduced; looking into it")
    assert out["status"] == "triaged"
    assert out["triaged_at"] == clock.now().isoformat().replace("+00:00", "Z")
    seen = check(world.client.get(f"/v1/reports/{made['id']}", headers=world.researcher), 200)
    assert [(u["status"], u["note"]) for u in seen["updates"]] == [
        ("new", None),
        ("triaged", "reproduced; looking into it"),
    ]
    assert "actor" not in seen["updates"][1]
    (event,) = audit_events(db, "safety.report.updated")
    assert event.before is not None
    assert event.after is not None
    assert (event.before["status"], event.after["status"]) == ("new", "triaged")
    assert event.data["note"] == "reproduced; looking into it"
    (payload,) = enqueued(db, "safety.report.updated")
    assert payload["data"]["status"] == "triaged"
    assert payload["data"]["previous_status"] == "new"
    assert payload["data"]["note"] == "reproduced; looking into it"
    assert "description" not in payload["data"]
    # A note alone keeps the status; closing and reopening are changes like any other.
    assert patch(world, made["id"], note="fix lands in v2")["status"] == "triaged"
    assert patch(world, made["id"], status="actioned")["status"] == "actioned"
    assert patch(world, made["id"], status="triaged")["status"] == "triaged"
    assert patch(world, made["id"], 422, status="triaged")["code"] == "nothing_to_change"
    assert patch(world, made["id"], 422)["code"] == "nothing_to_change"
    assert patch(world, made["id"], 422, status="new")["status"] == 422


def test_duplicates_point_at_a_report_on_the_same_model(world: World) -> None:
    first = file_report(world, world.researcher)
    second = file_report(world, world.partner(), components=["weights"])
    assert patch(world, second["id"], 422, status="duplicate")["code"] == "duplicate_of_required"
    assert (
        patch(world, second["id"], 422, status="duplicate", duplicate_of=second["id"])["code"]
        == "invalid_duplicate_of"
    )
    assert (
        patch(world, second["id"], 422, status="duplicate", duplicate_of=999_999)["code"]
        == "invalid_duplicate_of"
    )
    assert (
        patch(world, second["id"], 422, status="dismissed", duplicate_of=first["id"])["code"]
        == "duplicate_of_without_duplicate"
    )
    out = patch(world, second["id"], status="duplicate", duplicate_of=first["id"])
    assert (out["status"], out["duplicate_of"]) == ("duplicate", first["id"])
    assert patch(world, second["id"], status="triaged")["duplicate_of"] is None


def test_a_withdrawn_report_stays_withdrawn(world: World) -> None:
    made = file_report(world, world.researcher)
    check(world.client.post(f"/v1/reports/{made['id']}/withdraw", headers=world.researcher), 200)
    assert patch(world, made["id"], 409, status="triaged")["code"] == "report_withdrawn"
    assert patch(world, 999_999, 404, status="triaged")["code"] == "report_not_found"


def test_the_queue_filters_by_model_status_severity_category_and_age(
    world: World, clock: FixedClock
) -> None:
    old = file_report(world, world.researcher, severity="low", category="bias")
    clock.advance(hours=30)
    crit = file_report(world, world.partner(), components=["weights"], severity="critical")
    mid = file_report(world, world.stranger, components=["tokenizer"], severity="medium")
    patch(world, mid["id"], status="dismissed", note="works as intended")

    def ids(**params: str | int | list[str]) -> list[int]:
        page = check(world.client.get("/v1/reports", params=params, headers=world.admin), 200)
        return [r["id"] for r in page["items"]]

    assert ids() == [old["id"], crit["id"], mid["id"]]
    assert ids(order="newest") == [mid["id"], crit["id"], old["id"]]
    assert ids(status=["new", "triaged"]) == [old["id"], crit["id"]]
    assert ids(severity=["critical", "low"]) == [old["id"], crit["id"]]
    assert ids(min_severity="medium") == [crit["id"], mid["id"]]
    assert ids(category="bias") == [old["id"]]
    assert ids(older_than_hours=24) == [old["id"]]
    assert ids(newer_than_hours=24) == [crit["id"], mid["id"]]
    assert ids(model=MODEL, status="dismissed") == [mid["id"]]
    first = check(world.client.get("/v1/reports?limit=2", headers=world.admin), 200)
    rest = check(
        world.client.get(
            "/v1/reports", params={"limit": 2, "cursor": first["next_cursor"]}, headers=world.admin
        ),
        200,
    )
    assert [r["id"] for r in first["items"] + rest["items"]] == [old["id"], crit["id"], mid["id"]]
    queue = check(world.client.get("/v1/reports", headers=world.admin), 200)["items"]
    assert queue[1]["reporter"] == f"partner:{world.partner_id}"
    assert queue[1]["reporter_name"] == "Partner Co"
    unknown = world.client.get("/v1/reports?model=acme/none", headers=world.admin)
    assert unknown.json()["code"] == "model_not_found"
    assert world.client.get("/v1/reports?severity=huge", headers=world.admin).status_code == 422


def test_holding_a_component_from_a_report(world: World, db: Session, clock: FixedClock) -> None:
    subscribe(db, clock, ["embargo.held", "safety.report.updated"])
    made = file_report(world, world.partner(), components=["weights"], severity="critical")
    resp = world.client.post(
        f"/v1/reports/{made['id']}/hold", json={"reason": "until we retrain"}, headers=world.admin
    )
    out = check(resp, 200)
    assert out["schedule"]["held"] is True
    reason = out["schedule"]["hold_reason"]
    assert reason == f"safety report #{made['id']} (critical, security): until we retrain"
    assert out["report"]["status"] == "actioned"
    schedule = check(world.client.get(SCHEDULE.format("weights"), headers=world.admin), 200)
    assert schedule["held"] is True
    assert schedule["hold_reason"] == reason
    (held,) = enqueued(db, "embargo.held")
    assert held["data"]["report"] == made["id"]
    (event,) = audit_events(db, "schedule.held")
    assert event.data["report"] == made["id"]
    # The reporter learns the component is held, not the admin's words.
    seen = check(world.client.get(f"/v1/reports/{made['id']}", headers=world.partner()), 200)
    assert seen["updates"][-1]["status"] == "actioned"
    assert seen["updates"][-1]["note"] == f"weights of {MODEL}@v1 is held while this is reviewed"
    # Held already; a report on the release as a whole must say which component.
    again = world.client.post(f"/v1/reports/{made['id']}/hold", json={}, headers=world.admin)
    assert again.json()["code"] == "already_held"
    whole = file_report(world, world.researcher, components=[])
    needs = world.client.post(f"/v1/reports/{whole['id']}/hold", json={}, headers=world.admin)
    assert needs.json()["code"] == "component_required"
    named = world.client.post(
        f"/v1/reports/{whole['id']}/hold", json={"component": "config"}, headers=world.admin
    )
    assert check(named, 200)["schedule"]["component"] == "config"
