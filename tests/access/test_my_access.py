"""A researcher's own view of their access: each component's state for them in the manifest,
and ``GET /v1/me/grants`` — what each grant opens and when, revoked ones with the reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.factories.access import researcher
from tests.factories.catalogue import check, publish_release

MODEL = "/v1/models/acme/atlas-7b"
MANIFEST = MODEL + "/releases/v1/manifest"


def _publish(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> None:
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        components={
            "config": [("open", now - timedelta(days=1))],
            "weights": [("research", now - timedelta(hours=1)), ("open", now + timedelta(days=30))],
            "safety": [
                ("partner", now - timedelta(hours=1)),
                ("research", now + timedelta(days=2)),
            ],
            "eval": [("partner", now - timedelta(hours=1))],
        },
        files={
            "config.json": ("config", b"{}"),
            "w.bin": ("weights", b"w"),
            "s.bin": ("safety", b"s"),
            "e.bin": ("eval", b"e"),
        },
    )


def _states(manifest: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {c["name"]: (c["state"], c["opens_to_you_at"]) for c in manifest["components"]}


def test_component_state_for_each_kind_of_caller(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _publish(client, admin_headers, clock)
    now = clock.now()
    anonymous = check(client.get(MANIFEST), 200)
    assert _states(anonymous) == {
        "config": ("downloadable", None),
        # An approved request opens it now; it opens to everyone in 30 days anyway.
        "weights": ("needs_grant", (now + timedelta(days=30)).isoformat().replace("+00:00", "Z")),
        # A grant opens it in 2 days, and nothing else ever does.
        "safety": ("needs_grant", None),
        "eval": ("closed", None),
    }
    _user, headers = researcher(db, clock)
    check(
        client.post(MODEL + "/access-requests", json={"accept_license": True}, headers=headers),
        201,
    )
    req = check(client.get("/v1/me/access-requests", headers=headers), 200)["items"][0]
    check(client.post(f"/v1/access-requests/{req['id']}/approve", headers=admin_headers), 200)
    granted = _states(check(client.get(MANIFEST, headers=headers), 200))
    assert granted["weights"] == ("downloadable", None)
    assert granted["safety"][0] == "opens"
    assert granted["eval"] == ("closed", None)
    check(
        client.post(
            MODEL + "/releases/v1/components/safety/schedule/hold",
            json={"reason": "red-team finding"},
            headers=admin_headers,
        ),
        200,
    )
    assert _states(check(client.get(MANIFEST, headers=headers), 200))["safety"] == ("held", None)


def test_my_grants_say_what_they_open_and_when_and_why_revoked(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _publish(client, admin_headers, clock)
    user, headers = researcher(db, clock)
    _, other_headers = researcher(db, clock)
    assert check(client.get("/v1/me/grants", headers=headers), 200)["items"] == []
    created = check(
        client.post(MODEL + "/access-requests", json={"accept_license": True}, headers=headers),
        201,
    )
    check(client.post(f"/v1/access-requests/{created['id']}/approve", headers=admin_headers), 200)
    grants = check(client.get("/v1/me/grants", headers=headers), 200)["items"]
    assert len(grants) == 1
    g = grants[0]
    assert (g["model"], g["active"], g["request_id"], g["version"]) == (
        "acme/atlas-7b",
        True,
        created["id"],
        "v1",
    )
    assert g["revision"]
    assert len(g["revision"]) == 40
    opens = {c["name"]: (c["state"], c["opens_to_you_at"]) for c in g["components"]}
    in_two_days = (clock.now() + timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert opens["weights"] == ("downloadable", None)
    assert opens["safety"] == ("opens", in_two_days)
    # Nobody else's grants, ever.
    assert check(client.get("/v1/me/grants", headers=other_headers), 200)["items"] == []
    check(
        client.delete(
            MODEL + f"/grants/{user.id}", params={"reason": "left the lab"}, headers=admin_headers
        ),
        204,
    )
    revoked = check(client.get("/v1/me/grants", headers=headers), 200)["items"][0]
    assert (revoked["active"], revoked["revoke_reason"]) == (False, "left the lab")
    assert revoked["revoked_at"] is not None
    states = {c["name"]: c["state"] for c in revoked["components"]}
    assert states["weights"] == "needs_grant"
    # Admins and partners hold no grants; the route is for users.
    assert check(client.get("/v1/me/grants", headers=admin_headers), 200)["items"] == []
    assert client.get("/v1/me/grants").status_code == 401


def test_a_users_requests_newest_first_page_by_page(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    from app.access import repository as repo

    _publish(client, admin_headers, clock)
    user, headers = researcher(db, clock)
    ids = []
    for n in range(3):
        made = check(
            client.post(MODEL + "/access-requests", json={"accept_license": True}, headers=headers),
            201,
        )
        ids.append(made["id"])
        if n < 2:
            check(
                client.post(
                    f"/v1/access-requests/{made['id']}/deny",
                    json={"reason": f"try again {n}"},
                    headers=admin_headers,
                ),
                200,
            )
    first = repo.requests_page(db, after=None, limit=2, user_id=user.id, newest_first=True)
    assert [r.id for r, _ in first] == [ids[2], ids[1]]
    rest = repo.requests_page(
        db, after=first[-1][0].id, limit=2, user_id=user.id, newest_first=True
    )
    assert [r.id for r, _ in rest] == [ids[0]]
