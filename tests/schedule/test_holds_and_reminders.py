"""``GET /v1/holds`` (what is held or restricted now) and ``GET /v1/reminders`` (the notices
the scheduler has yet to send): the API behind ``weightgate upcoming``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.schedule.reminders import remind_expiring_credentials, remind_upcoming_lifts
from tests.factories.access import enqueued, researcher, subscribe
from tests.factories.catalogue import check, publish_release

DAY = timedelta(days=1)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def schedule_url(model: str, component: str = "weights") -> str:
    return f"/v1/models/{model}/releases/v1/components/{component}/schedule"


def get(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    return check(client.get(path, params=params, headers=headers), 200)


def two_models(client: TestClient, headers: dict[str, str], t: datetime) -> None:
    """acme/a: weights partner since T-1d, open at T+2d; config open since T-1d.
    acme/b: weights research since T-2d, open at T+3d."""
    publish_release(
        client,
        headers,
        model="acme/a",
        components={
            "weights": [("partner", t - DAY), ("open", t + 2 * DAY)],
            "config": [("open", t - DAY)],
        },
        files={"w.bin": ("weights", b"w"), "c.json": ("config", b"{}")},
    )
    publish_release(
        client,
        headers,
        model="acme/b",
        components={"weights": [("research", t - 2 * DAY), ("open", t + 3 * DAY)]},
    )


def test_holds_list_held_and_restricted_components_with_what_resume_brings(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    t = clock.now()
    two_models(client, admin_headers, t)
    assert get(client, admin_headers, "/v1/holds") == {"items": [], "next_cursor": None}
    check(
        client.post(
            schedule_url("acme/a") + "/hold", json={"reason": "eval"}, headers=admin_headers
        ),
        200,
    )
    check(
        client.post(
            schedule_url("acme/a", "config") + "/restrict",
            json={"tier": "internal", "reason": "leaked key in config"},
            headers=admin_headers,
        ),
        200,
    )
    clock.advance(days=3)  # the held open stage's time passes
    items = get(client, admin_headers, "/v1/holds")["items"]
    by_name = {i["component"]: i for i in items}
    held = by_name["weights"]
    assert (held["model"], held["version"], held["release_status"]) == ("acme/a", "v1", "published")
    assert (held["held"], held["held_at"], held["hold_reason"]) == (True, iso(t), "eval")
    assert held["tier"] == "partner"
    assert held["restricted_tier"] is None
    # Resuming would open it at once: the stage's time passed during the hold.
    assert held["waiting"] == {"tier": "open", "at": iso(t + 2 * DAY)}
    capped = by_name["config"]
    assert (capped["held"], capped["tier"], capped["restricted_tier"]) == (
        False,
        "internal",
        "internal",
    )
    assert capped["restrict_reason"] == "leaked key in config"
    assert capped["waiting"] == {"tier": "open", "at": iso(t - DAY)}
    # Filter, pagination, and the end of a hold.
    assert get(client, admin_headers, "/v1/holds", model="acme/b")["items"] == []
    first = get(client, admin_headers, "/v1/holds", limit=1)
    rest = get(client, admin_headers, "/v1/holds", limit=1, cursor=first["next_cursor"])
    assert [i["component"] for i in first["items"] + rest["items"]] == [
        i["component"] for i in items
    ]
    check(client.post(schedule_url("acme/a") + "/resume", headers=admin_headers), 200)
    assert [i["component"] for i in get(client, admin_headers, "/v1/holds")["items"]] == ["config"]


def test_a_hold_with_nothing_passed_waits_for_the_next_stage(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    t = clock.now()
    two_models(client, admin_headers, t)
    check(
        client.post(schedule_url("acme/b") + "/hold", json={"reason": "x"}, headers=admin_headers),
        200,
    )
    (item,) = get(client, admin_headers, "/v1/holds")["items"]
    assert item["waiting"] == {"tier": "open", "at": iso(t + 3 * DAY)}
    assert item["tier"] == "research"


def test_reminders_merge_lifts_and_credentials_in_due_order(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, db: Session
) -> None:
    t = clock.now()
    two_models(client, admin_headers, t)
    partner = check(
        client.post(
            "/v1/partners",
            json={"name": "Lab", "models": ["acme/a"], "secret_expires_at": iso(t + 10 * DAY)},
            headers=admin_headers,
        ),
        201,
    )
    _, user_headers = researcher(db, clock, email="r@example.org")
    key = check(
        client.post(
            "/v1/me/api-keys", json={"name": "ci", "expires_in_days": 8}, headers=user_headers
        ),
        201,
    )
    items = get(client, admin_headers, "/v1/reminders")["items"]
    # Lifts are announced 24 h ahead, credentials 7 days ahead (the default settings); at
    # the same due time, lifts come first.
    assert key["expires_at"] == iso(t + 8 * DAY)
    assert [(i["event"], i["due_at"], i["at"]) for i in items] == [
        ("embargo.upcoming", iso(t + DAY), iso(t + 2 * DAY)),
        ("credentials.expiring", iso(t + DAY), iso(t + 8 * DAY)),
        ("embargo.upcoming", iso(t + 2 * DAY), iso(t + 3 * DAY)),
        ("credentials.expiring", iso(t + 3 * DAY), iso(t + 10 * DAY)),
    ]
    lift = next(i for i in items if i["data"].get("model") == "acme/a")
    assert lift["data"] == {
        "model": "acme/a",
        "version": "v1",
        "component": "weights",
        "tier": "open",
        "at": (t + 2 * DAY).isoformat(),
    }
    secret = next(i for i in items if i["data"].get("kind") == "partner_secret")
    assert secret["data"]["client_id"] == partner["client_id"]
    api_key = next(i for i in items if i["data"].get("kind") == "api_key")
    assert (api_key["data"]["prefix"], api_key["data"]["user"]) == (key["prefix"], "r@example.org")
    assert key["key"] not in str(items)

    # Pages of one walk the same list; until and model narrow it.
    walked, cursor = [], None
    while True:
        page = get(
            client,
            admin_headers,
            "/v1/reminders",
            limit=1,
            **({"cursor": cursor} if cursor else {}),
        )
        walked += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert walked == items
    soon = get(client, admin_headers, "/v1/reminders", until=iso(t + 2 * DAY))["items"]
    assert [i["due_at"] for i in soon] == [iso(t + DAY), iso(t + DAY)]
    only_b = get(client, admin_headers, "/v1/reminders", model="acme/b")["items"]
    assert [(i["event"], i["data"]["model"]) for i in only_b] == [("embargo.upcoming", "acme/b")]
    bad = client.get("/v1/reminders", params={"cursor": "nope"}, headers=admin_headers)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")


def test_a_listed_reminder_is_what_the_scheduler_sends_then_it_leaves_the_list(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock, db: Session
) -> None:
    t = clock.now()
    two_models(client, admin_headers, t)
    subscribe(db, clock, ["embargo.upcoming", "credentials.expiring"])
    listed = get(client, admin_headers, "/v1/reminders", model="acme/a")["items"][0]
    clock.set(datetime.fromisoformat(listed["due_at"]))
    remind_upcoming_lifts(db, now=clock.now(), before=DAY)
    remind_expiring_credentials(db, now=clock.now(), before=7 * DAY)
    db.commit()
    (sent,) = enqueued(db, "embargo.upcoming")
    assert sent["data"] == listed["data"]
    after = get(client, admin_headers, "/v1/reminders")["items"]
    assert [i["data"].get("model") for i in after] == ["acme/b"]


def test_held_and_capped_stages_have_no_reminder(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    t = clock.now()
    two_models(client, admin_headers, t)
    check(
        client.post(schedule_url("acme/a") + "/hold", json={"reason": "x"}, headers=admin_headers),
        200,
    )
    check(
        client.post(
            schedule_url("acme/b") + "/restrict",
            json={"tier": "research", "reason": "y"},
            headers=admin_headers,
        ),
        200,
    )
    assert get(client, admin_headers, "/v1/reminders")["items"] == []


def test_views_across_models_are_admin_only(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    _, headers = researcher(db, clock)
    for path in ("/v1/holds", "/v1/reminders"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=headers).status_code == 403
