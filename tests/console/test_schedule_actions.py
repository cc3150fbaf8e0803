"""Schedule actions from the console go through the API's services: same validation, same
audit events (actor: the signed-in admin), same errors; a stale form is refused with a
clear conflict message instead of overwriting another admin's change."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, Grant, User
from tests.console.signin import ORIGIN, sign_in
from tests.factories.catalogue import check, publish_release

PAGE = "/console/models/acme/atlas-7b/releases/v1"
ACTIONS = PAGE + "/components/weights/schedule"
API = "/v1/models/acme/atlas-7b/releases/v1/components/weights/schedule"


def setup(client: TestClient, headers: dict[str, str], clock: FixedClock) -> None:
    t = clock.now()
    publish_release(
        client,
        headers,
        components={
            "weights": [
                ("partner", t - timedelta(days=1)),
                ("research", t + timedelta(hours=5)),
                ("open", t + timedelta(days=20)),
            ]
        },
    )


def etag_of(html: str, component: str = "weights") -> str:
    section = html.split(f'id="c-{component}"')[1]
    found = re.search(r'name="etag" value="([^"]+)"', section)
    assert found
    return found.group(1).replace("&#34;", '"')


def post(client: TestClient, path: str, data: dict[str, object], csrf: str) -> Any:
    return client.post(
        path, data={**data, "csrf_token": csrf}, headers={"Origin": ORIGIN}, follow_redirects=False
    )


def test_hold_resume_restrict_lift_are_audited_as_the_admin(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    setup(client, admin_headers, clock)
    csrf = sign_in(client, admin_key)
    admin = db.scalars(select(User).where(User.email == "admin@example.org")).one()
    page = client.get(PAGE).text
    resp = post(client, ACTIONS + "/hold", {"reason": "evals", "etag": etag_of(page)}, csrf)
    assert resp.status_code == 303
    assert resp.headers["location"] == PAGE + "?done=held&component=weights#c-weights"
    shown = client.get(resp.headers["location"]).text
    assert "Held: no later stage applies until resumed." in shown
    assert check(client.get(API, headers=admin_headers), 200)["hold_reason"] == "evals"
    post(client, ACTIONS + "/resume", {"etag": etag_of(shown)}, csrf)
    page = client.get(PAGE).text
    post(
        client,
        ACTIONS + "/restrict",
        {"tier": "internal", "reason": "leak", "etag": etag_of(page)},
        csrf,
    )
    page = client.get(PAGE).text
    post(client, ACTIONS + "/resume", {"reason": "fixed", "etag": etag_of(page)}, csrf)
    page = client.get(PAGE).text
    resp = post(client, ACTIONS + "/lift", {"tier": "research", "etag": etag_of(page)}, csrf)
    assert resp.status_code == 303
    api = check(client.get(API, headers=admin_headers), 200)
    assert api["tier"] == "research"
    assert api["held"] is False
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action.like("schedule.%")).order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == [
        "schedule.held",
        "schedule.resumed",
        "schedule.restricted",
        "schedule.resumed",
        "schedule.lifted",
    ]
    assert {e.actor for e in events} == {f"user:{admin.id}"}
    assert events[0].data["reason"] == "evals"
    assert events[3].data["reason"] == "fixed"


def test_a_refused_action_shows_why_and_changes_nothing(
    client: TestClient, admin_key: str, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    setup(client, admin_headers, clock)
    csrf = sign_in(client, admin_key)
    page = client.get(PAGE).text
    resp = post(client, ACTIONS + "/hold", {"reason": "", "etag": etag_of(page)}, csrf)
    assert resp.status_code == 422
    assert (
        'role="alert" id="err-weights">reason: String should have at least 1 character' in resp.text
    )
    assert check(client.get(API, headers=admin_headers), 200)["held"] is False
    # Without the CSRF token: 403, nothing changed.
    forged = client.post(ACTIONS + "/hold", data={"reason": "x"}, headers={"Origin": ORIGIN})
    assert forged.status_code == 403
    assert check(client.get(API, headers=admin_headers), 200)["held"] is False


def test_two_admins_editing_at_once_the_second_is_told(
    client: TestClient,
    app: object,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    from tests.factories.principals import make_user

    setup(client, admin_headers, clock)
    _, other_key = make_user(db, clock, role="admin", email="other@example.org")
    csrf = sign_in(client, admin_key)
    seen_by_first = client.get(PAGE).text
    with TestClient(app) as second:  # type: ignore[arg-type]
        csrf2 = sign_in(second, other_key)
        page = second.get(PAGE).text
        post(second, ACTIONS + "/hold", {"reason": "second admin", "etag": etag_of(page)}, csrf2)
    resp = post(
        client,
        ACTIONS + "/restrict",
        {"tier": "internal", "reason": "first", "etag": etag_of(seen_by_first)},
        csrf,
    )
    assert resp.status_code == 412
    assert "was changed by someone else after you read it" in resp.text
    # The page shown is the current one: the other admin's hold is there.
    assert "second admin" in resp.text
    api = check(client.get(API, headers=admin_headers), 200)
    assert api["hold_reason"] == "second admin"
    assert api["restricted_tier"] is None


def test_reschedule_preview_then_save(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    setup(client, admin_headers, clock)
    csrf = sign_in(client, admin_key)
    client.cookies.set("wg_tz", "Asia/Tokyo", path="/console")
    page = client.get(PAGE).text
    weights = page.split('id="c-weights"')[1]
    # The past stage is carried unchanged; the upcoming ones are shown in Tokyo time.
    assert 'name="past_at" value="2026-05-31T12:00:00+00:00"' in weights
    assert 'value="2026-06-02T02:00:00"' in weights  # 17:00 UTC is 02:00 in Tokyo
    form = {
        "etag": etag_of(page),
        "zone": "Asia/Tokyo",
        "past_tier": "partner",
        "past_at": "2026-05-31T12:00:00+00:00",
        "tier": ["research", "", "open"],
        "at": ["2026-06-03T09:00:00", "", "2026-07-01T09:00:00"],
        "reason": "moved",
        "csrf_token": csrf,
    }
    before = db.scalars(select(AuditEvent)).all()
    preview = client.post(ACTIONS + "/preview", data=form, headers={"Origin": ORIGIN})
    assert preview.status_code == 200
    assert "research: moves to" in preview.text
    assert "2026-06-03 00:00 UTC" in preview.text
    assert "nothing is saved" in preview.text
    assert len(db.scalars(select(AuditEvent)).all()) == len(before)  # the preview wrote nothing
    assert (
        check(client.get(API, headers=admin_headers), 200)["stages"][1]["at"]
        == "2026-06-01T17:00:00Z"
    )
    saved = client.post(ACTIONS, data=form, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    stages = check(client.get(API, headers=admin_headers), 200)["stages"]
    assert [(s["tier"], s["at"]) for s in stages] == [
        ("partner", "2026-05-31T12:00:00Z"),
        ("research", "2026-06-03T00:00:00Z"),
        ("open", "2026-07-01T00:00:00Z"),
    ]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "schedule.rescheduled")).one()
    assert event.data["reason"] == "moved"
    # Editing a past stage away is refused by the service's rule, shown on the page.
    page = client.get(PAGE).text
    bad = {**form, "etag": etag_of(page), "past_at": "2026-05-30T12:00:00+00:00"}
    refused = client.post(ACTIONS, data=bad, headers={"Origin": ORIGIN})
    assert refused.status_code == 422
    assert 'id="err-weights"' in refused.text
    assert "past" in refused.text.split('id="err-weights"')[1][:300]


def test_lift_confirmation_names_the_tier_and_its_audience(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    from tests.factories.principals import make_user

    setup(client, admin_headers, clock)
    model_id = db.scalar(select(Grant.model_id).limit(1))
    assert model_id is None
    from app.models import Model

    model = db.scalars(select(Model)).one()
    for i in range(3):
        user, _ = make_user(db, clock, email=f"r{i}@example.org")
        db.add(Grant(user_id=user.id, model_id=model.id, created_at=clock.now()))
    db.commit()
    sign_in(client, admin_key)
    page = client.get(ACTIONS + "/lift", params={"tier": "research"})
    assert page.status_code == 200
    assert (
        "It is <strong>partner</strong> now. Lifting opens it to <strong>research</strong>"
        in page.text
    )
    assert "It opens to 3 users with an access grant for this model." in page.text
    everyone = client.get(ACTIONS + "/lift", params={"tier": "open"}).text
    assert "Everyone will be able to download it" in everyone
