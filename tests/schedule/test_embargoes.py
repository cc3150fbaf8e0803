from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.clock import FixedClock
from tests.factories.catalogue import check, publish_release


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def setup(client: TestClient, headers: dict[str, str], clock: FixedClock) -> datetime:
    t = clock.now()
    publish_release(
        client,
        headers,
        model="acme/a",
        components={
            "weights": [("partner", t - timedelta(days=1)), ("open", t + timedelta(days=2))]
        },
    )
    publish_release(
        client,
        headers,
        model="acme/b",
        components={
            "weights": [("research", t - timedelta(days=2)), ("open", t + timedelta(days=1))]
        },
    )
    return t


def rows(client: TestClient, headers: dict[str, str], **params: Any) -> Any:
    return check(client.get("/v1/embargoes", params=params, headers=headers), 200)


def test_upcoming_soonest_first_past_most_recent_first(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    t = setup(client, admin_headers, clock)
    up = rows(client, admin_headers)["items"]
    assert [(r["model"], r["tier"], r["at"], r["state"]) for r in up] == [
        ("acme/b", "open", iso(t + timedelta(days=1)), "upcoming"),
        ("acme/a", "open", iso(t + timedelta(days=2)), "upcoming"),
    ]
    assert up[0]["component_tier"] == "research"
    assert up[0]["release_status"] == "published"
    assert up[0]["version"] == "v1"
    assert up[0]["component"] == "weights"
    past = rows(client, admin_headers, when="past")["items"]
    assert [(r["model"], r["state"], r["recorded_at"]) for r in past] == [
        ("acme/a", "past", None),
        ("acme/b", "past", None),
    ]
    everything = rows(client, admin_headers, when="all")["items"]
    assert [r["at"] for r in everything] == sorted(r["at"] for r in everything)
    assert len(everything) == 4


def test_filters_and_pagination(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    t = setup(client, admin_headers, clock)
    only_a = rows(client, admin_headers, when="all", model="acme/a")["items"]
    assert {r["model"] for r in only_a} == {"acme/a"}
    window = rows(
        client,
        admin_headers,
        when="all",
        since=iso(t - timedelta(days=1)),
        until=iso(t + timedelta(days=2)),
    )["items"]
    assert [r["at"] for r in window] == [iso(t - timedelta(days=1)), iso(t + timedelta(days=1))]
    seen = []
    cursor = None
    while True:
        params: dict[str, Any] = {"when": "all", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = rows(client, admin_headers, **params)
        seen += [(r["model"], r["at"]) for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 4
    assert seen == sorted(seen, key=lambda x: x[1])
    bad = client.get("/v1/embargoes", params={"cursor": "%%%"}, headers=admin_headers)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"
    unknown = client.get("/v1/embargoes", params={"model": "acme/zzz"}, headers=admin_headers)
    assert unknown.status_code == 404


def test_held_and_capped_stages_say_so(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    setup(client, admin_headers, clock)
    base = "/v1/models/acme/{}/releases/v1/components/weights/schedule"
    check(client.post(base.format("a") + "/hold", json={"reason": "r"}, headers=admin_headers), 200)
    check(
        client.post(
            base.format("b") + "/restrict",
            json={"tier": "research", "reason": "r"},
            headers=admin_headers,
        ),
        200,
    )
    up = {r["model"]: r for r in rows(client, admin_headers)["items"]}
    assert up["acme/a"]["state"] == "held"
    assert up["acme/a"]["held"] is True
    assert up["acme/b"]["state"] == "capped"
    assert up["acme/b"]["restricted_tier"] == "research"
