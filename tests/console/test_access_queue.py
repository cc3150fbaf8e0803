"""The console's access queue: filters, a bulk decision of 500 requests in one action (one
audit event each), answers with markup shown as text, and a model's request settings."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AccessRequest, AuditEvent, Grant, Model, User
from tests.console.signin import ORIGIN, sign_in
from tests.factories.catalogue import check, publish_release


def requests(
    db: Session,
    clock: FixedClock,
    model: str,
    n: int,
    *,
    domain: str = "example.org",
    answer: str = "a lab",
    age_days: int = 0,
    prefix: str = "u",
) -> list[int]:
    ns, name = model.split("/")
    model_row = db.scalars(select(Model).where(Model.namespace == ns, Model.name == name)).one()
    at = clock.now() - timedelta(days=age_days)
    db.execute(
        insert(User),
        [
            {"email": f"{prefix}{i}@{domain}", "name": "", "role": "researcher", "created_at": at}
            for i in range(n)
        ],
    )
    users = db.scalars(select(User.id).where(User.email.like(f"{prefix}%@{domain}"))).all()
    db.execute(
        insert(AccessRequest),
        [
            {
                "user_id": u,
                "model_id": model_row.id,
                "status": "pending",
                "answers": {"affiliation": answer},
                "license_sha256": model_row.license_sha256,
                "created_at": at,
            }
            for u in users
        ],
    )
    db.commit()
    return list(
        db.scalars(
            select(AccessRequest.id)
            .where(AccessRequest.user_id.in_(users))
            .order_by(AccessRequest.id)
        )
    )


def shown_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]


def test_filters_by_model_age_answer_and_domain(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    publish_release(client, admin_headers, model="acme/a")
    publish_release(client, admin_headers, model="acme/b")
    old = requests(db, clock, "acme/a", 2, age_days=10, prefix="old", answer="Univ of Oslo")
    new = requests(
        db,
        clock,
        "acme/a",
        2,
        domain="lab.example",
        prefix="new",
        answer="<script>alert(1)</script>",
    )
    other = requests(db, clock, "acme/b", 1, prefix="other")
    sign_in(client, admin_key)
    assert shown_ids(client.get("/console/requests").text) == old + new + other
    assert shown_ids(client.get("/console/requests?model=acme/b").text) == other
    assert shown_ids(client.get("/console/requests?older_than_days=7").text) == old
    assert shown_ids(client.get("/console/requests?answer=oslo").text) == old
    assert shown_ids(client.get("/console/requests?email_domain=lab.example").text) == new
    # The API has the same filters.
    api = check(
        client.get(
            "/v1/access-requests",
            params={"status": "pending", "email_domain": "LAB.example"},
            headers=admin_headers,
        ),
        200,
    )
    assert [r["id"] for r in api["items"]] == new
    page = client.get("/console/requests?email_domain=lab.example").text
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "(current)" in page
    assert client.get("/console/requests?limit=7").status_code == 422


def test_five_hundred_approved_in_one_action_each_audited(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    publish_release(client, admin_headers, model="acme/a")
    ids = requests(db, clock, "acme/a", 500)
    csrf = sign_in(client, admin_key)
    page = client.get("/console/requests?limit=500").text
    assert shown_ids(page) == ids
    resp = client.post(
        "/console/requests/decide",
        data={
            "csrf_token": csrf,
            "action": "approve",
            "ids": [str(i) for i in ids],
            "back": "?limit=500",
        },
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/requests?limit=500&done=approved&n=500&skipped=0"
    assert "Approved 500 requests." in client.get(resp.headers["location"]).text
    db.expire_all()
    assert (
        db.scalar(select(func.count()).select_from(Grant).where(Grant.revoked_at.is_(None))) == 500
    )
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "access_request.approved")
    ).all()
    assert sorted(int(e.target_id) for e in events) == ids
    admin = db.scalars(select(User).where(User.email == "admin@example.org")).one()
    assert {e.actor for e in events} == {f"user:{admin.id}"}
    assert shown_ids(client.get("/console/requests").text) == []


def test_deny_needs_a_reason_and_a_forged_post_changes_nothing(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    publish_release(client, admin_headers, model="acme/a")
    ids = requests(db, clock, "acme/a", 3)
    csrf = sign_in(client, admin_key)
    form = {"csrf_token": csrf, "action": "deny", "ids": [str(i) for i in ids]}
    refused = client.post("/console/requests/decide", data=form, headers={"Origin": ORIGIN})
    assert refused.status_code == 422
    assert "denying needs a reason" in refused.text
    forged = client.post(
        "/console/requests/decide",
        data={**form, "reason": "no", "csrf_token": ""},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    db.expire_all()
    assert set(db.scalars(select(AccessRequest.status))) == {"pending"}
    ok = client.post(
        "/console/requests/decide",
        data={**form, "reason": "not eligible"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert ok.headers["location"].endswith("done=denied&n=3&skipped=0")


def test_model_request_settings(
    client: TestClient,
    db: Session,
    admin_key: str,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    publish_release(client, admin_headers, model="acme/a")
    csrf = sign_in(client, admin_key)
    resp = client.post(
        "/console/models/acme/a/settings",
        data={
            "csrf_token": csrf,
            "auto_approve": "on",
            "field_name": ["affiliation", "country", ""],
            "field_type": ["text", "country", "text"],
            "field_label": ["Affiliation", "", ""],
            "field_options": ["", "", ""],
            "field_required": ["0"],
        },
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    model = check(client.get("/v1/models/acme/a", headers=admin_headers), 200)
    assert model["auto_approve"] is True
    assert [(f["name"], f["type"], f["required"]) for f in model["request_fields"]] == [
        ("affiliation", "text", True),
        ("country", "country", False),
    ]
    bad = client.post(
        "/console/models/acme/a/settings",
        data={
            "csrf_token": csrf,
            "field_name": ["Bad Name"],
            "field_type": ["text"],
            "field_label": [""],
            "field_options": [""],
        },
        headers={"Origin": ORIGIN},
    )
    assert bad.status_code == 422
    assert "request_fields.0.name" in bad.text
    assert (
        check(client.get("/v1/models/acme/a", headers=admin_headers), 200)["auto_approve"] is True
    )
