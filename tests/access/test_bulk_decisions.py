"""Bulk decisions: 1,000 pending requests decided in one call, with a bounded number of SQL
statements (set-based, not one round trip per request)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AccessRequest, Grant, Model, User
from tests.factories.access import audit_events, enqueued, subscribe
from tests.factories.catalogue import check, publish_release
from tests.fixtures.statements import count_statements

N = 1000


def pending_requests(db: Session, clock: FixedClock, model: str, n: int) -> list[int]:
    """``n`` researchers, each with a pending request for ``model`` (bulk-inserted)."""
    ns, name = model.split("/")
    model_id = db.scalar(select(Model.id).where(Model.namespace == ns, Model.name == name))
    now = clock.now()
    db.execute(
        insert(User),
        [
            {"email": f"bulk{i}@example.org", "name": "", "role": "researcher", "created_at": now}
            for i in range(n)
        ],
    )
    users = db.scalars(select(User.id).where(User.email.like("bulk%@example.org"))).all()
    db.execute(
        insert(AccessRequest),
        [
            {
                "user_id": u,
                "model_id": model_id,
                "status": "pending",
                "answers": {},
                "license_sha256": "0" * 64,
                "created_at": now,
            }
            for u in users
        ],
    )
    db.commit()
    return list(
        db.scalars(
            select(AccessRequest.id)
            .where(AccessRequest.model_id == model_id)
            .order_by(AccessRequest.id)
        )
    )


def test_bulk_approval_of_1000_requests_in_one_call(
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    clock: FixedClock,
    engine: Engine,
) -> None:
    publish_release(
        client,
        admin_headers,
        components={"weights": [("research", clock.now() - timedelta(days=1))]},
    )
    ids = pending_requests(db, clock, "acme/atlas-7b", N)
    assert len(ids) == N
    with count_statements(engine) as statements:
        r = client.post(
            "/v1/access-requests/bulk",
            json={"action": "approve", "ids": [*ids, 999_999_999, ids[0]]},
            headers=admin_headers,
        )
    body = check(r, 200)
    assert body["action"] == "approve"
    assert body["done"] == ids
    assert body["skipped"] == [{"id": 999_999_999, "code": "not_found"}]
    # Set-based: the statement count does not depend on the number of requests.
    assert len(statements) < 30, statements
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Grant).where(Grant.revoked_at.is_(None))) == N
    statuses = db.scalars(select(AccessRequest.status).where(AccessRequest.id.in_(ids))).all()
    assert set(statuses) == {"approved"}
    # One audit event per request, each naming it.
    events = audit_events(db, "access_request.approved")
    assert sorted(int(e.target_id) for e in events) == ids
    assert {e.data["batch"] for e in events} == {N}
    assert {e.data["model"] for e in events} == {"acme/atlas-7b"}
    # A granted researcher now sees the research-tier weights.
    again = check(
        client.post(
            "/v1/access-requests/bulk",
            json={"action": "approve", "ids": ids[:3]},
            headers=admin_headers,
        ),
        200,
    )
    assert again["done"] == []
    assert again["skipped"] == [{"id": i, "code": "not_pending"} for i in ids[:3]]


def test_bulk_denial_needs_a_reason_and_notifies_each_user(
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    clock: FixedClock,
) -> None:
    publish_release(
        client, admin_headers, components={"weights": [("open", clock.now() - timedelta(days=1))]}
    )
    ids = pending_requests(db, clock, "acme/atlas-7b", 5)
    subscribe(db, clock, ["access.denied"])
    no_reason = client.post(
        "/v1/access-requests/bulk", json={"action": "deny", "ids": ids}, headers=admin_headers
    )
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["detail"]
    body = check(
        client.post(
            "/v1/access-requests/bulk",
            json={"action": "deny", "ids": ids, "reason": "incomplete answers"},
            headers=admin_headers,
        ),
        200,
    )
    assert body["done"] == ids
    hooks = enqueued(db, "access.denied")
    assert sorted(h["data"]["request_id"] for h in hooks) == ids
    assert {h["data"]["reason"] for h in hooks} == {"incomplete answers"}
    assert len({h["id"] for h in hooks}) == 5
    assert db.scalar(select(func.count()).select_from(Grant)) == 0


def test_bulk_limits(client: TestClient, admin_headers: dict[str, str]) -> None:
    empty = client.post(
        "/v1/access-requests/bulk", json={"action": "approve", "ids": []}, headers=admin_headers
    )
    assert empty.status_code == 422
    huge = client.post(
        "/v1/access-requests/bulk",
        json={"action": "approve", "ids": list(range(1, 5002))},
        headers=admin_headers,
    )
    assert huge.status_code == 422
    odd = client.post(
        "/v1/access-requests/bulk", json={"action": "grant", "ids": [1]}, headers=admin_headers
    )
    assert odd.status_code == 422
