"""Filing safety reports: who may file (exactly those who may download what they report on),
what reporters see of their own reports, and that nobody sees or changes anyone else's."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.factories.access import audit_events, enqueued, subscribe
from tests.factories.catalogue import check
from tests.fixtures.parts import change_settings
from tests.safety.conftest import file_report, report_body
from tests.tokens.world import MODEL, World


def test_a_researcher_files_a_report_and_follows_it(world: World, db: Session) -> None:
    made = file_report(world, world.researcher, components=["config", "tokenizer"])
    assert made["model"] == MODEL
    assert made["version"] == "v1"
    assert made["components"] == ["config", "tokenizer"]
    assert (made["category"], made["severity"], made["status"]) == ("security", "high", "new")
    assert made["description"].startswith("a two-line prompt")
    assert made["evidence"] == "prompt: ...\noutput: ..."
    assert [(u["status"], u["note"]) for u in made["updates"]] == [("new", None)]
    assert "reporter" not in made

    mine = check(world.client.get("/v1/me/reports", headers=world.researcher), 200)
    assert [r["id"] for r in mine["items"]] == [made["id"]]
    one = check(world.client.get(f"/v1/reports/{made['id']}", headers=world.researcher), 200)
    assert one == made
    on_model = check(world.client.get(f"/v1/models/{MODEL}/reports", headers=world.researcher), 200)
    assert [r["id"] for r in on_model["items"]] == [made["id"]]

    (event,) = audit_events(db, "safety.report.filed")
    assert event.actor == f"user:{world.researcher_id}"
    assert event.after is not None
    assert event.after["components"] == ["config", "tokenizer"]
    assert event.after["severity"] == "high"
    # The report's text never goes into the audit log.
    assert "stand down" not in str(event.after) + str(event.data)
    assert event.data["description_chars"] == len(made["description"])


def test_webhooks_carry_the_text_only_to_subscriptions_that_ask(
    world: World, db: Session, clock: FixedClock
) -> None:
    plain = subscribe(db, clock, ["safety.report.filed"])
    texty = subscribe(db, clock, ["safety.report.filed"])
    texty.include_report_text = True
    db.commit()
    made = file_report(world, world.researcher)
    by_sub = {p["data"]["report"]: p for p in enqueued(db, "safety.report.filed")}
    assert list(by_sub) == [made["id"]]
    payloads = enqueued(db, "safety.report.filed")
    assert len(payloads) == 2
    without, with_text = (
        [p for p in payloads if "description" not in p["data"]],
        [p for p in payloads if "description" in p["data"]],
    )
    assert len(without) == 1
    assert len(with_text) == 1
    assert without[0]["data"] == {
        "report": made["id"],
        "model": MODEL,
        "version": "v1",
        "components": ["config"],
        "category": "security",
        "severity": "high",
        "status": "new",
        "duplicate_of": None,
        "reporter": f"user:{world.researcher_id}",
        "at": made["created_at"].replace("Z", "+00:00"),
    }
    assert with_text[0]["data"]["description"] == made["description"]
    assert with_text[0]["data"]["evidence"] == made["evidence"]
    assert plain.id != texty.id


def test_the_webhook_api_takes_the_opt_in(world: World) -> None:
    body = {"url": "https://93.184.215.14/x", "events": ["safety.report.filed"]}
    default = check(world.client.post("/v1/webhooks", json=body, headers=world.admin), 201)
    assert default["include_report_text"] is False
    opted = check(
        world.client.post(
            "/v1/webhooks", json={**body, "include_report_text": True}, headers=world.admin
        ),
        201,
    )
    assert opted["include_report_text"] is True


def _without_name(problem: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: (v.replace(name, "X") if isinstance(v, str) else v) for k, v in problem.items()}


@pytest.mark.parametrize(
    ("who", "allowed", "closed"),
    [
        ("researcher", ["config", "tokenizer"], ["weights", "safety"]),
        ("stranger", ["tokenizer"], ["config", "weights", "safety"]),
        ("partner", ["weights", "config", "tokenizer"], ["safety"]),
    ],
)
def test_only_what_the_caller_may_download_can_be_reported(
    world: World, who: str, allowed: list[str], closed: list[str]
) -> None:
    headers = world.partner() if who == "partner" else getattr(world, who)
    for name in allowed:
        assert file_report(world, headers, components=[name])["components"] == [name]
    missing = file_report(world, headers, 404, components=["no-such-part"])
    assert missing["code"] == "component_not_found"
    for name in closed:
        refused = file_report(world, headers, 404, components=[name])
        # Exactly the answer a missing component gets: nothing says it exists.
        assert _without_name(refused, name) == _without_name(missing, "no-such-part")
    mine = check(world.client.get("/v1/me/reports", headers=headers), 200)["items"]
    assert sorted(c for r in mine for c in r["components"]) == sorted(allowed)


def test_unknown_models_and_releases_and_anonymous_callers(world: World) -> None:
    gone = file_report(world, world.researcher, 404, model="acme/nothing-here")
    assert gone["code"] == "model_not_found"
    assert file_report(world, world.researcher, 404, version="v9")["code"] == "release_not_found"
    anonymous = world.client.post(f"/v1/models/{MODEL}/reports", json=report_body())
    assert anonymous.status_code == 401
    # No component named: a report on the release as a whole, from anyone who may download
    # something in it.
    whole = file_report(world, world.stranger, components=[])
    assert whole["components"] == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"category": "vibes"}, "category"),
        ({"description": ""}, "description"),
        ({"description": "x" * 20_001}, "description"),
        ({"components": ["c"] * 65}, "components"),
        ({"reporter": "user:1"}, "reporter"),
        ({"description": "nul \x00 inside"}, "description"),
    ],
)
def test_malformed_reports_are_refused_and_nothing_is_kept(
    world: World, change: dict[str, Any], where: str
) -> None:
    problem = file_report(world, world.researcher, 422, **change)
    assert where in str(problem)
    assert check(world.client.get("/v1/me/reports", headers=world.researcher), 200)["items"] == []


def test_reports_are_rate_limited_per_reporter(world: World, app: FastAPI) -> None:
    change_settings(app, quota_reports_per_hour=2)
    file_report(world, world.researcher)
    file_report(world, world.researcher)
    resp = world.client.post(
        f"/v1/models/{MODEL}/reports", json=report_body(), headers=world.researcher
    )
    assert resp.status_code == 429
    assert resp.json()["code"] == "quota_reports"
    assert 0 < int(resp.headers["Retry-After"]) <= 3600
    # Another reporter has their own allowance.
    file_report(world, world.partner())
    assert (
        len(check(world.client.get("/v1/me/reports", headers=world.researcher), 200)["items"]) == 2
    )


def test_withdrawing_an_own_report(world: World, db: Session) -> None:
    made = file_report(world, world.researcher)
    url = f"/v1/reports/{made['id']}/withdraw"
    out = check(world.client.post(url, json={"note": "my mistake"}, headers=world.researcher), 200)
    assert out["status"] == "withdrawn"
    assert [(u["status"], u["note"]) for u in out["updates"]][-1] == ("withdrawn", "my mistake")
    again = check(world.client.post(url, headers=world.researcher), 409)
    assert again["code"] == "report_closed"
    (event,) = audit_events(db, "safety.report.withdrawn")
    assert event.before is not None
    assert event.after is not None
    assert event.before["status"] == "new"
    assert event.after["status"] == "withdrawn"


def test_a_reporter_cannot_read_or_change_anothers_reports(world: World) -> None:
    """Every route, tried by another researcher and by a partner, on the researcher's
    report: "not found" for reporters' routes, "admins only" for the triage routes."""
    made = file_report(world, world.researcher)
    rid = made["id"]
    missing = check(world.client.get("/v1/reports/999999", headers=world.stranger), 404)
    for other in (world.stranger, world.partner()):
        got = check(world.client.get(f"/v1/reports/{rid}", headers=other), 404)
        assert _without_name(got, str(rid)) == _without_name(missing, "999999")
        assert (
            check(world.client.post(f"/v1/reports/{rid}/withdraw", headers=other), 404)["code"]
            == "report_not_found"
        )
        assert check(world.client.get("/v1/me/reports", headers=other), 200)["items"] == []
        listed = check(world.client.get(f"/v1/models/{MODEL}/reports", headers=other), 200)
        assert listed["items"] == []
        patch = world.client.patch(
            f"/v1/reports/{rid}", json={"status": "dismissed"}, headers=other
        )
        assert patch.status_code == 403
        hold = world.client.post(f"/v1/reports/{rid}/hold", json={}, headers=other)
        assert hold.status_code == 403
        assert world.client.get("/v1/reports", headers=other).status_code == 403
    # Untouched, and still the researcher's.
    mine = check(world.client.get(f"/v1/reports/{rid}", headers=world.researcher), 200)
    assert mine["status"] == "new"
    assert len(mine["updates"]) == 1
    # An admin reads it, with who filed it.
    seen = check(world.client.get(f"/v1/reports/{rid}", headers=world.admin), 200)
    assert seen["reporter"] == f"user:{world.researcher_id}"
    assert seen["reporter_name"].endswith("@example.org")
