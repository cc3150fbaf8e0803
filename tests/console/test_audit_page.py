"""The console's audit page: the API's filters (actor, model, event type, time range in the
viewer's zone) and the chain's verification."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent
from tests.console.signin import sign_in
from tests.factories.catalogue import check, publish_release


def actions(html: str) -> list[str]:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return re.findall(r"<td>([a-z_]+\.[a-z_.]+)</td>", body)


def test_filters_and_chain_verification(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    publish_release(
        client,
        admin_headers,
        model="acme/a",
        components={"w": [("open", clock.now() + timedelta(days=1))]},
        files={"w.bin": ("w", b"w")},
    )
    clock.advance(hours=2)
    publish_release(client, admin_headers, model="acme/b")
    check(
        client.post(
            "/v1/models/acme/a/releases/v1/components/w/schedule/hold",
            json={"reason": "r"},
            headers=admin_headers,
        ),
        200,
    )
    sign_in(client, admin_key)
    everything = actions(client.get("/console/audit").text)
    assert everything[0] == "session.started"
    assert "schedule.held" in everything
    only_a = actions(client.get("/console/audit", params={"model": "acme/a"}).text)
    assert only_a == [
        "schedule.held",
        "release.published",
        "file.uploaded",
        "component.created",
        "release.created",
        "model.created",
    ]
    assert actions(client.get("/console/audit", params={"action": "schedule.*"}).text) == [
        "schedule.held"
    ]
    assert actions(client.get("/console/audit", params={"actor": "user:999"}).text) == []
    # T0 is 12:00 UTC = 14:00 in Paris; "until 13:00 Paris" keeps acme/a's first events only.
    client.cookies.set("wg_tz", "Europe/Paris", path="/console")
    early = actions(client.get("/console/audit", params={"until": "2026-06-01T15:00:00"}).text)
    assert "model.created" in early
    assert "schedule.held" not in early
    assert client.get("/console/audit", params={"since": "yesterday"}).status_code == 422
    verified = client.get("/console/audit/verify").text
    assert "The chain is intact" in verified
    db.execute(
        update(AuditEvent).where(AuditEvent.action == "schedule.held").values(actor="user:666")
    )
    db.commit()
    assert "The chain is broken at event" in client.get("/console/audit/verify").text
