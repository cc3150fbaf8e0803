"""Two admins editing one component at once: every schedule answer carries its version as
an ETag, and a change sent with an older If-Match is refused (412) and changes nothing."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from app.clock import FixedClock
from tests.factories.catalogue import check, publish_release

SCHEDULE = "/v1/models/acme/atlas-7b/releases/v1/components/weights/schedule"


def test_a_change_against_an_old_version_is_refused(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    t = clock.now()
    publish_release(
        client, admin_headers, components={"weights": [("research", t + timedelta(days=2))]}
    )
    first = client.get(SCHEDULE, headers=admin_headers)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    clock.advance(hours=1)
    # Time passing is not a change.
    assert client.get(SCHEDULE, headers=admin_headers).headers["etag"] == etag
    # Admin A holds, with the version A read.
    held = client.post(
        SCHEDULE + "/hold", json={"reason": "evals"}, headers={**admin_headers, "If-Match": etag}
    )
    check(held, 200)
    assert held.headers["etag"] != etag
    # Admin B, still looking at the old version, tries to lift: refused, nothing changes.
    stale = client.post(
        SCHEDULE + "/restrict",
        json={"tier": "partner", "reason": "x"},
        headers={**admin_headers, "If-Match": etag},
    )
    assert stale.status_code == 412
    body = stale.json()
    assert body["code"] == "schedule_changed"
    assert "changed by someone else" in body["detail"]
    assert stale.headers["etag"] == held.headers["etag"]
    now = check(client.get(SCHEDULE, headers=admin_headers), 200)
    assert now["held"] is True
    assert now["restricted_tier"] is None
    # With the current version (or none, or *), the change goes through.
    ok = client.post(
        SCHEDULE + "/resume",
        headers={**admin_headers, "If-Match": f'W/"x", {held.headers["etag"]}'},
    )
    check(ok, 200)
    check(
        client.post(
            SCHEDULE + "/hold", json={"reason": "again"}, headers={**admin_headers, "If-Match": "*"}
        ),
        200,
    )
