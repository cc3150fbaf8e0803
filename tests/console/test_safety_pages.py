"""Safety reports in the console, as plain HTML: a reporter sees and withdraws their own
reports and nobody else's; an admin triages the queue and holds from a report."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.console.signin import ORIGIN, form_token, sign_in
from tests.factories.catalogue import check
from tests.safety.conftest import file_report
from tests.tokens.world import World, build_world


def key_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_reporters_and_admins_in_the_console(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    admin_headers: dict[str, str],
    admin_key: str,
) -> None:
    world: World = build_world(client, db, clock, admin_headers)
    mine = file_report(world, world.researcher, description="<b>bold</b> claim")
    theirs = file_report(world, world.stranger, components=["tokenizer"], severity="low")

    sign_in(client, key_of(world.researcher))
    listing = client.get("/console/reports")
    assert listing.status_code == 200
    assert f"#{mine['id']}" in listing.text
    assert f"#{theirs['id']}" not in listing.text
    page = client.get(f"/console/reports/{mine['id']}")
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in page.text  # shown as text, never markup
    assert client.get(f"/console/reports/{theirs['id']}").status_code == 404
    assert client.get("/console/reports/nope").status_code == 404
    token = form_token(page.text)
    stolen = client.post(
        f"/console/reports/{theirs['id']}/withdraw",
        data={"csrf_token": token},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert stolen.status_code == 404
    admin_only = client.post(
        f"/console/reports/{mine['id']}/triage",
        data={"csrf_token": token, "status": "dismissed"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert admin_only.status_code == 404
    no_csrf = client.post(
        f"/console/reports/{mine['id']}/withdraw",
        data={},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert no_csrf.status_code == 403

    client.cookies.clear()
    sign_in(client, admin_key)
    queue = client.get("/console/reports")
    assert f"#{mine['id']}" in queue.text
    assert f"#{theirs['id']}" in queue.text
    high = client.get("/console/reports?min_severity=high")
    assert f"#{theirs['id']}" not in high.text
    page = client.get(f"/console/reports/{mine['id']}")
    token = form_token(page.text)
    triaged = client.post(
        f"/console/reports/{mine['id']}/triage",
        data={"csrf_token": token, "status": "triaged", "note": "reproduced"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert triaged.status_code == 303
    bad = client.post(
        f"/console/reports/{mine['id']}/triage",
        data={"csrf_token": token, "status": "duplicate"},
        headers={"Origin": ORIGIN},
    )
    assert bad.status_code == 422
    assert "duplicate_of" in bad.text
    held = client.post(
        f"/console/reports/{mine['id']}/hold",
        data={"csrf_token": token, "component": "config", "reason": "pending review"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert held.status_code == 303
    schedule = check(
        client.get(
            "/v1/models/acme/atlas-7b/releases/v1/components/config/schedule",
            headers=admin_headers,
        ),
        200,
    )
    assert schedule["hold_reason"].startswith(f"safety report #{mine['id']}")

    client.cookies.clear()
    sign_in(client, key_of(world.researcher))
    page = client.get(f"/console/reports/{mine['id']}")
    assert "reproduced" in page.text
    assert "is held while this is reviewed" in page.text
    assert "by user:" not in page.text


def test_upcoming_says_which_holds_the_safety_policy_placed(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    admin_headers: dict[str, str],
    admin_key: str,
) -> None:
    world: World = build_world(client, db, clock, admin_headers)
    policy = {"enabled": True, "min_reporters": 1, "min_severity": "low", "window_hours": 300}
    check(
        client.put("/v1/models/acme/atlas-7b/safety-policy", json=policy, headers=admin_headers),
        200,
    )
    file_report(world, world.partner(), components=["weights"])  # research opens in 10 days
    sign_in(client, admin_key)
    page = client.get("/console/upcoming").text
    risk = page.split('id="risk-h"')[1].split('id="lifts-h"')[0]
    assert "held by safety policy" in risk
    assert "acme/atlas-7b@v1/weights" in risk


def test_the_safety_policy_page(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    admin_headers: dict[str, str],
    admin_key: str,
) -> None:
    world: World = build_world(client, db, clock, admin_headers)
    file_report(world, world.partner(), components=["weights"])
    token = sign_in(client, admin_key)
    url = "/console/models/acme/atlas-7b/safety-policy"
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="enabled" value="yes" id="enabled">' in page.text  # off by default
    bad = client.post(
        url,
        data={
            "csrf_token": token,
            "enabled": "yes",
            "min_reporters": "0",
            "min_severity": "low",
            "window_hours": "300",
        },
        headers={"Origin": ORIGIN},
    )
    assert bad.status_code == 422
    assert "min_reporters" in bad.text
    saved = client.post(
        url,
        data={
            "csrf_token": token,
            "enabled": "yes",
            "min_reporters": "1",
            "min_severity": "low",
            "window_hours": "300",
        },
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    got = check(client.get("/v1/models/acme/atlas-7b/safety-policy", headers=admin_headers), 200)
    assert (got["enabled"], got["min_reporters"], got["window_hours"]) == (True, 1, 300)
    assert [h["component"] for h in got["holds"]] == ["weights"]  # applied to the open report
    assert "no (resumed)" not in client.get(url).text
    client.cookies.clear()
    sign_in(client, key_of(world.researcher))
    assert client.get(url).status_code == 404


def test_filing_a_report_from_the_console(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    world: World = build_world(client, db, clock, admin_headers)
    token = sign_in(client, key_of(world.stranger))  # no grant: only the tokenizer is open
    url = "/console/catalogue/acme/atlas-7b/report"
    form = client.get(url + "?version=v1")
    assert form.status_code == 200
    assert 'value="tokenizer"' in form.text
    assert 'value="config"' not in form.text  # closed to them: not even named
    assert 'value="safety"' not in form.text
    assert client.get("/console/catalogue/acme/none/report").status_code == 404
    fields = {
        "csrf_token": token,
        "version": "v1",
        "category": "privacy",
        "severity": "high",
        "description": "recites a phone number",
    }
    closed = client.post(url, data={**fields, "components": "config"}, headers={"Origin": ORIGIN})
    assert closed.status_code == 404
    empty = client.post(url, data={**fields, "description": ""}, headers={"Origin": ORIGIN})
    assert empty.status_code == 422
    filed = client.post(
        url,
        data={**fields, "components": "tokenizer"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert filed.status_code == 303
    mine = check(client.get("/v1/me/reports", headers=world.stranger), 200)["items"]
    assert [(r["components"], r["category"], r["severity"]) for r in mine] == [
        (["tokenizer"], "privacy", "high")
    ]
    assert filed.headers["location"] == f"/console/reports/{mine[0]['id']}"
