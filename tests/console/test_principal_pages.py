"""The principals pages in-process: finding users, changing a role, disabling (the user's
browser session ends on its next request) and re-enabling, revoking one of their keys;
creating a partner, rotating its secret with a grace period, ending an agreement and
disabling it — each through the API's services (same errors, audit events with the admin
as actor), each principal with the trail of what was done to it."""

from __future__ import annotations

import re

import httpx2
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, Partner, User
from tests.access.test_partner_tokens import exchange
from tests.console.signin import ORIGIN, sign_in
from tests.factories.catalogue import check, create_model
from tests.factories.principals import make_user


def post(client: TestClient, path: str, csrf: str, **data: object) -> httpx2.Response:
    return client.post(
        path, data={"csrf_token": csrf, **data}, headers={"Origin": ORIGIN}, follow_redirects=False
    )


def test_an_admin_finds_a_user_changes_the_role_disables_and_enables_them(
    client: TestClient,
    app: FastAPI,
    db: Session,
    clock: FixedClock,
    admin_key: str,
    admin_headers: dict[str, str],
) -> None:
    user, key = make_user(db, clock, email="ada@lab.example")
    make_user(db, clock, email="bob@elsewhere.example")
    db.commit()
    csrf = sign_in(client, admin_key)
    found = client.get("/console/users", params={"q": "LAB.ex"}).text
    assert "ada@lab.example" in found
    assert "bob@elsewhere.example" not in found
    assert "No user matches." in client.get("/console/users?q=nobody&state=disabled").text
    page = client.get(f"/console/users/{user.id}").text
    prefix = re.search(r"<code>(wg_[^<…]+)…</code>", page)
    assert prefix is not None  # the key, by prefix only
    assert key not in page

    with TestClient(app) as browser:
        sign_in(browser, key)
        assert browser.get("/console/catalogue").status_code == 200

        to_admin = post(client, f"/console/users/{user.id}/role", csrf, role="admin")
        assert to_admin.status_code == 303
        assert check(client.get(f"/v1/users/{user.id}", headers=admin_headers), 200)["role"] == (
            "admin"
        )
        bad = post(client, f"/console/users/{user.id}/role", csrf, role="owner")
        assert bad.status_code == 422
        assert "role" in bad.text

        off = post(client, f"/console/users/{user.id}/disable", csrf)
        assert off.status_code == 303
        assert "Disabled: their sessions ended" in client.get(off.headers["location"]).text
        # Their browser is signed out on its very next request; their key is refused.
        assert browser.get("/console/catalogue", follow_redirects=False).status_code == 303
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        on = post(client, f"/console/users/{user.id}/enable", csrf)
        assert on.status_code == 303
        assert browser.get("/console/catalogue", follow_redirects=False).status_code == 303
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    (key_id,) = [
        k["id"]
        for k in client.get(f"/v1/users/{user.id}/api-keys", headers=admin_headers).json()["items"]
    ]
    revoked = post(client, f"/console/users/{user.id}/keys/{key_id}/revoke", csrf)
    assert revoked.status_code == 303
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    again = post(client, f"/console/users/{user.id}/keys/{key_id}/revoke", csrf)
    assert again.status_code == 404
    assert "no API key" in again.text

    admin_id = db.scalar(select(User.id).where(User.email != user.email, User.role == "admin"))
    events = db.scalars(
        select(AuditEvent).where(
            AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id)
        )
    ).all()
    assert [e.action for e in events].count("user.updated") == 3
    assert {e.actor for e in events if e.action == "user.updated"} == {f"user:{admin_id}"}
    trail = client.get(f"/console/users/{user.id}").text
    assert trail.count("user.updated") == 3
    assert "Nothing recorded yet." not in trail


def test_the_last_admin_cannot_be_demoted_from_the_console(
    client: TestClient, db: Session, admin_key: str
) -> None:
    csrf = sign_in(client, admin_key)
    admin_id = db.scalar(select(User.id).where(User.role == "admin"))
    refused = post(client, f"/console/users/{admin_id}/role", csrf, role="researcher")
    assert refused.status_code == 409
    assert "admin" in refused.text
    assert 'role="alert"' in refused.text
    assert db.scalar(select(User.role).where(User.id == admin_id)) == "admin"


def test_an_admin_creates_a_partner_rotates_its_secret_and_ends_its_agreement(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    admin_key: str,
    admin_headers: dict[str, str],
) -> None:
    create_model(client, admin_headers, "acme/a")
    create_model(client, admin_headers, "acme/b")
    csrf = sign_in(client, admin_key)
    unknown = post(client, "/console/partners", csrf, name="Lab <X>", models="acme/a\nacme/zzz")
    assert unknown.status_code == 422
    assert "unknown model" in unknown.text
    assert "acme/zzz</textarea>" in unknown.text  # what was typed is kept

    made = post(client, "/console/partners", csrf, name="Lab <X>", models="acme/a\n acme/b \n")
    assert made.status_code == 200, made.text
    assert "Lab &lt;X&gt;" in made.text
    assert "<X>" not in made.text
    secret = re.search(r"(wgp_[A-Za-z0-9_-]{43})", made.text)
    assert secret is not None
    partner = db.scalars(select(Partner)).one()
    creds = {"client_id": partner.client_id}
    assert exchange(client, creds, secret.group(1)).status_code == 200
    listed = client.get("/console/partners").text
    assert "acme/a, acme/b" in listed
    assert secret.group(1) not in listed

    base = f"/console/partners/{partner.id}"
    bad_grace = post(client, f"{base}/rotate-secret", csrf, grace_amount="8", grace_unit="days")
    assert bad_grace.status_code == 422
    rotated = post(client, f"{base}/rotate-secret", csrf, grace_amount="1", grace_unit="hours")
    assert rotated.status_code == 200
    new = re.search(r"(wgp_[A-Za-z0-9_-]{43})", rotated.text)
    assert new is not None
    assert new.group(1) != secret.group(1)
    assert "The old secret keeps working until" in rotated.text
    assert exchange(client, creds, secret.group(1)).status_code == 200  # in its grace period
    assert exchange(client, creds, new.group(1)).status_code == 200
    clock.advance(hours=1, seconds=1)
    assert exchange(client, creds, secret.group(1)).status_code == 401
    assert exchange(client, creds, new.group(1)).status_code == 200

    csrf = sign_in(client, admin_key)  # an hour idle: the console session ended meanwhile
    ended = post(client, f"{base}/agreements/end", csrf, model="acme/a")
    assert ended.headers["location"] == f"{base}?done=ended"
    api = check(client.get(f"/v1/partners/{partner.id}", headers=admin_headers), 200)
    assert {m["model"]: m["active"] for m in api["models"]} == {"acme/a": False, "acme/b": True}
    not_covered = post(client, f"{base}/agreements/end", csrf, model="acme/a")
    assert not_covered.status_code == 422
    readded = post(client, f"{base}/agreements", csrf, model="acme/a", ends_at="")
    assert readded.headers["location"] == f"{base}?done=added"
    api = check(client.get(f"/v1/partners/{partner.id}", headers=admin_headers), 200)
    assert all(m["active"] for m in api["models"])

    off = post(client, f"{base}/disable", csrf)
    assert off.status_code == 303
    assert exchange(client, creds, new.group(1)).status_code == 401
    assert post(client, f"{base}/enable", csrf).status_code == 303
    assert exchange(client, creds, new.group(1)).status_code == 200

    page = client.get(base).text
    assert page.count("partner.updated") == 5
    assert "partner.created" in page
    assert new.group(1) not in page
    assert client.get("/console/partners/999999").status_code == 404
