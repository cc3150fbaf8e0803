"""Admins manage users over HTTP (``/v1/users``) and on the server (``weightgate admin
update-user``): onboarding with a first key, finding a user, changing a role, and offboarding
(disable: keys refused, download tokens revoked, at once), never losing the last admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from app.access import users
from app.access.schemas import UserPatch
from app.cli.main import app as cli
from app.clock import FixedClock
from app.db import make_engine, make_sessionmaker
from app.errors import Conflict
from app.models import AuditEvent, IssuedToken, User
from app.settings import get_settings
from tests.factories.access import researcher
from tests.factories.catalogue import check, publish_release
from tests.fixtures.databases import fresh_database, lock_timeout


def user_id_of(db: Session, email: str) -> int:
    uid = db.scalar(select(User.id).where(User.email == email))
    assert uid is not None
    return uid


def patch(
    client: TestClient, headers: dict[str, str], user_id: int, status: int, **body: Any
) -> Any:
    return check(client.patch(f"/v1/users/{user_id}", json=body, headers=headers), status)


def test_an_admin_onboards_a_user_whose_first_key_works(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    made = check(
        client.post(
            "/v1/users",
            json={"email": "Ada@Example.ORG", "name": "Ada", "role": "researcher"},
            headers=admin_headers,
        ),
        201,
    )
    assert made["user"]["email"] == "Ada@example.org"  # the domain is case-folded
    assert made["user"]["role"] == "researcher"
    assert made["user"]["disabled_at"] is None
    me = check(client.get("/v1/me", headers={"Authorization": f"Bearer {made['api_key']}"}), 200)
    assert me["id"] == made["user"]["id"]
    assert (me["email"], me["role"]) == ("Ada@example.org", "researcher")
    taken = client.post("/v1/users", json={"email": "ada@example.org"}, headers=admin_headers)
    assert taken.status_code == 409
    assert taken.json()["code"] == "user_exists"
    for bad in (
        {"email": "x@example.org", "role": "owner"},
        {"email": "x@example.org", "tier": "internal"},  # unknown fields are refused
        {"email": "nope"},
    ):
        refused = client.post("/v1/users", json=bad, headers=admin_headers)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"] == "application/problem+json"
    assert db.scalar(select(User.id).where(User.email == "x@example.org")) is None
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["user.created", "api_key.created"]


def test_only_admins_manage_users(client: TestClient, db: Session, clock: FixedClock) -> None:
    user, headers = researcher(db, clock)
    for method, url, body in (
        ("POST", "/v1/users", {"email": "y@example.org"}),
        ("GET", "/v1/users", None),
        ("GET", f"/v1/users/{user.id}", None),
        ("PATCH", f"/v1/users/{user.id}", {"role": "admin"}),
    ):
        r = client.request(method, url, json=body, headers=headers)
        assert r.status_code == 403, (method, url)
        assert client.request(method, url, json=body).status_code == 401
    db.expire_all()
    assert db.get(User, user.id).role == "researcher"  # type: ignore[union-attr]


def test_users_are_listed_in_pages_and_found_by_email_role_and_state(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    for i in range(3):
        researcher(db, clock, email=f"r{i}@example.org")
    gone = user_id_of(db, "r1@example.org")
    patch(client, admin_headers, gone, 200, disabled=True)
    first = check(client.get("/v1/users?limit=2", headers=admin_headers), 200)
    rest = check(
        client.get(f"/v1/users?limit=2&cursor={first['next_cursor']}", headers=admin_headers), 200
    )
    emails = [u["email"] for u in first["items"] + rest["items"]]
    assert emails == ["admin@example.org", "r0@example.org", "r1@example.org", "r2@example.org"]
    found = check(client.get("/v1/users?email=R2@EXAMPLE.org", headers=admin_headers), 200)
    assert [u["email"] for u in found["items"]] == ["r2@example.org"]
    admins = check(client.get("/v1/users?role=admin", headers=admin_headers), 200)
    assert [u["email"] for u in admins["items"]] == ["admin@example.org"]
    disabled = check(client.get("/v1/users?disabled=true", headers=admin_headers), 200)
    assert [u["id"] for u in disabled["items"]] == [gone]
    assert disabled["items"][0]["disabled_at"] is not None
    one = check(client.get(f"/v1/users/{gone}", headers=admin_headers), 200)
    assert one["email"] == "r1@example.org"
    missing = client.get("/v1/users/999999", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "user_not_found"
    assert client.get("/v1/users?role=owner", headers=admin_headers).status_code == 422


def test_users_are_found_by_part_of_their_email_or_name(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    researcher(db, clock, email="ada@lab.example")
    researcher(db, clock, email="grace@uni.example")
    renamed = user_id_of(db, "grace@uni.example")
    patch(client, admin_headers, renamed, 200, name="Grace Hopper")

    def found(q: str) -> list[str]:
        page = check(client.get("/v1/users", params={"q": q}, headers=admin_headers), 200)
        return [u["email"] for u in page["items"]]

    assert found("LAB.example") == ["ada@lab.example"]
    assert found("hopper") == ["grace@uni.example"]
    assert found(".example") == ["ada@lab.example", "grace@uni.example"]
    # LIKE wildcards are taken literally.
    assert found("%") == []
    assert found("_") == []
    assert found("hopper") == found("HOPPER")
    assert client.get("/v1/users?q=" + "x" * 201, headers=admin_headers).status_code == 422


def test_disabling_a_user_stops_their_keys_and_tokens_at_once(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        components={"weights": [("open", clock.now() - timedelta(days=1))]},
        files={"w.bin": ("weights", b"weights")},
    )
    user, headers = researcher(db, clock, email="leaver@example.org")
    token = check(client.post("/v1/tokens", json={"model": "acme/atlas-7b"}, headers=headers), 201)
    url = "/v1/files/acme/atlas-7b/v1/w.bin"
    assert client.get(url, params={"token": token["token"]}).content == b"weights"

    out = patch(client, admin_headers, user.id, 200, disabled=True)
    assert datetime.fromisoformat(out["disabled_at"]) == clock.now()
    refused = client.get("/v1/me", headers=headers)
    assert refused.status_code == 401
    revoked = client.get(url, params={"token": token["token"]})
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "token_revoked"
    db.expire_all()
    row = db.scalar(select(IssuedToken).where(IssuedToken.jti == token["jti"]))
    assert row is not None
    assert row.revoked_reason == "user disabled"
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.updated").order_by(AuditEvent.id)
    ).all()[-1]
    assert event.before is not None
    assert event.after is not None
    assert (event.before["disabled_at"], event.after["disabled_at"]) == (
        None,
        clock.now().isoformat(),
    )
    assert event.data == {"tokens_revoked": 1, "sessions_ended": 0}
    assert event.actor.startswith("user:")

    # Re-enabled: the same key works again; the revoked token stays revoked.
    back = patch(client, admin_headers, user.id, 200, disabled=False)
    assert back["disabled_at"] is None
    assert check(client.get("/v1/me", headers=headers), 200)["email"] == "leaver@example.org"
    assert client.get(url, params={"token": token["token"]}).status_code == 401


def test_roles_change_but_the_last_active_admin_stays(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    me = user_id_of(db, "admin@example.org")
    for change in ({"role": "researcher"}, {"disabled": True}):
        refused = client.patch(f"/v1/users/{me}", json=change, headers=admin_headers)
        assert refused.status_code == 409, change
        assert refused.json()["code"] == "last_admin"
    db.expire_all()
    still = db.get(User, me)
    assert still is not None
    assert (still.role, still.disabled_at) == ("admin", None)

    user, headers = researcher(db, clock, email="bob@example.org")
    assert client.get("/v1/users", headers=headers).status_code == 403
    assert patch(client, admin_headers, user.id, 200, role="admin", name=" Bob ")["role"] == "admin"
    assert check(client.get("/v1/users", headers=headers), 200)["items"]  # an admin now
    # With a second admin, the first may step down (and then cannot come back by itself).
    assert patch(client, admin_headers, me, 200, role="researcher")["role"] == "researcher"
    assert client.get("/v1/users", headers=admin_headers).status_code == 403
    # Bob is the last one now.
    last = client.patch(f"/v1/users/{user.id}", json={"disabled": True}, headers=headers)
    assert last.status_code == 409
    assert last.json()["code"] == "last_admin"
    assert patch(client, headers, user.id, 422, role="root")["code"] == "validation_error"
    assert check(client.get(f"/v1/users/{user.id}", headers=headers), 200)["name"] == "Bob"


def test_the_server_cli_disables_and_re_enables_a_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``weightgate admin update-user`` on the embedded defaults, for when no admin key
    works: the same rules as the route."""
    monkeypatch.setenv("WEIGHTGATE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("WEIGHTGATE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()

        def admin(*args: str) -> Result:
            return runner.invoke(cli, ["admin", *args])

        made = admin("create-user", "--email", "ops@example.org", "--role", "admin")
        assert made.exit_code == 0, made.output
        last = admin("update-user", "--email", "ops@example.org", "--disable")
        assert last.exit_code == 1
        assert "last active admin" in last.output
        assert admin("create-user", "--email", "dev@example.org").exit_code == 0
        done = admin("update-user", "--email", "DEV@example.org", "--disable")
        assert done.exit_code == 0, done.output
        assert done.output.strip().endswith("dev@example.org (id 2): researcher, disabled")
        promoted = admin("update-user", "--email", "dev@example.org", "--enable", "--role", "admin")
        assert promoted.exit_code == 0, promoted.output
        assert promoted.output.strip().endswith("dev@example.org (id 2): admin, active")
        unknown = admin("update-user", "--email", "nobody@example.org", "--disable")
        assert unknown.exit_code == 1
        assert "no user with email nobody@example.org" in unknown.output
        bad = admin("update-user", "--email", "dev@example.org", "--role", "root")
        assert bad.exit_code == 2
    finally:
        get_settings.cache_clear()


@pytest.mark.own_database
def test_two_admins_demoting_each_other_at_once_leave_one(tmp_path: Path) -> None:
    """On PostgreSQL, with two real connections: the second demotion waits for the first
    (the active admins' rows are locked), then is refused."""
    with fresh_database(tmp_path, kind="postgresql", label="admins") as url:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        now = datetime.now(UTC)
        try:
            with sessions() as s:
                a, b = (User(email=e, name="", role="admin", created_at=now) for e in "ab")
                s.add_all([a, b])
                s.commit()
            with sessions() as first, sessions() as second:
                users.update_user(
                    first, user_id=a.id, body=UserPatch(role="researcher"), actor="x", now=now
                )
                lock_timeout(second)
                with pytest.raises(OperationalError, match="lock timeout") as waited:
                    users.update_user(
                        second, user_id=b.id, body=UserPatch(disabled=True), actor="x", now=now
                    )
                # It waited to count the admins, not later (on the audit chain's lock): both
                # counting two admins and then both stepping down is the race.
                assert "FROM users" in str(waited.value.statement)
                second.rollback()
                first.commit()
            with sessions() as second, pytest.raises(Conflict) as refused:
                users.update_user(
                    second, user_id=b.id, body=UserPatch(disabled=True), actor="x", now=now
                )
            assert refused.value.code == "last_admin"
            with sessions() as s:
                left = s.scalars(select(User.email).where(User.role == "admin")).all()
                assert left == ["b"]
        finally:
            engine.dispose()


def test_an_admin_revokes_one_key_of_a_user_and_the_others_keep_working(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    user, headers = researcher(db, clock, email="ada@example.org")
    spare = check(client.post("/v1/me/api-keys", json={"name": "ci"}, headers=headers), 201)
    keys = check(client.get(f"/v1/users/{user.id}/api-keys", headers=admin_headers), 200)
    assert [k["name"] for k in keys["items"]] == ["test", "ci"]
    assert all("key" not in k for k in keys["items"])  # prefixes only, never a key
    url = f"/v1/users/{user.id}/api-keys/{spare['id']}"
    assert client.delete(url, headers=admin_headers).status_code == 204
    gone = {"Authorization": f"Bearer {spare['key']}"}
    assert client.get("/v1/me", headers=gone).status_code == 401
    assert client.get("/v1/me", headers=headers).status_code == 200
    again = client.delete(url, headers=admin_headers)
    assert again.status_code == 404
    assert again.json()["code"] == "api_key_not_found"
    # A key id is looked up under the user named: another user's key is not found.
    other, _ = researcher(db, clock, email="bob@example.org")
    first = keys["items"][0]["id"]
    wrong = client.delete(f"/v1/users/{other.id}/api-keys/{first}", headers=admin_headers)
    assert wrong.status_code == 404
    assert client.get("/v1/me", headers=headers).status_code == 200
    assert client.get("/v1/users/999999/api-keys", headers=admin_headers).status_code == 404
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "api_key.revoked").order_by(AuditEvent.id)
    ).all()[-1]
    assert (event.target_id, event.actor) == (str(spare["id"]), f"user:{admin_id(db)}")


def admin_id(db: Session) -> int:
    return user_id_of(db, "admin@example.org")


def test_a_key_found_in_the_wild_is_revoked_by_its_value(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    user, headers = researcher(db, clock, email="ada@example.org")
    leaked = headers["Authorization"].removeprefix("Bearer ")
    report = {"key": leaked}
    done = check(client.post("/v1/api-keys/revoke", json=report, headers=admin_headers), 200)
    assert done["user_id"] == user.id
    assert done["prefix"] == leaked[:11]
    assert done["revoked_at"] is not None
    assert client.get("/v1/me", headers=headers).status_code == 401
    # Reported again (scanners report more than once): the same answer, nothing new.
    again = check(client.post("/v1/api-keys/revoke", json=report, headers=admin_headers), 200)
    assert again == done
    revocations = db.scalars(select(AuditEvent).where(AuditEvent.action == "api_key.revoked")).all()
    assert len(revocations) == 1
    assert revocations[0].data == {"reason": "reported leaked"}
    # The key appears nowhere: not in the audit trail, not in an error.
    db.expire_all()
    for e in db.scalars(select(AuditEvent)):
        assert leaked not in repr((e.before, e.after, e.data, e.target_id))
    unknown = "wg_" + "A" * 43
    missing = client.post("/v1/api-keys/revoke", json={"key": unknown}, headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "api_key_not_found"
    assert unknown not in missing.text
    garbage = client.post("/v1/api-keys/revoke", json={"key": "hunter2"}, headers=admin_headers)
    assert garbage.status_code == 404
    assert "hunter2" not in garbage.text
    assert client.post("/v1/api-keys/revoke", json=report, headers=headers).status_code == 401
    _, other = researcher(db, clock, email="bob@example.org")
    assert client.post("/v1/api-keys/revoke", json=report, headers=other).status_code == 403
