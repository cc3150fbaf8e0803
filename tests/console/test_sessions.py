"""Console sign-in: an API key exchanged for a server-side session; the cookie's flags;
idle timeout and absolute lifetime; sign-out and disabling a user end sessions at once."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, BrowserSession
from app.settings import Settings
from tests.console.signin import ORIGIN, form_token, sign_in
from tests.factories.principals import make_user


def test_sign_in_exchanges_the_key_for_a_session_row(
    client: TestClient, db: Session, clock: FixedClock, admin_key: str
) -> None:
    page = client.get("/console/sign-in")
    resp = client.post(
        "/console/sign-in",
        data={"api_key": admin_key, "csrf_token": form_token(page.text), "next": "/console/models"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/models"
    cookie = next(
        v for k, v in resp.headers.multi_items() if k == "set-cookie" and "wg_session=" in v
    )
    flags = {p.strip().lower() for p in cookie.split(";")}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/console" in flags
    assert "secure" not in flags  # the public URL is http here
    value = cookie.split(";")[0].split("=", 1)[1]
    assert admin_key not in cookie
    assert value != admin_key
    row = db.scalars(select(BrowserSession)).one()
    assert row.method == "api_key"
    assert row.ended_at is None
    assert row.expires_at == clock.now() + timedelta(hours=12)
    assert value not in (row.token_hash, row.csrf_token)  # only the hash is stored
    started = db.scalars(select(AuditEvent).where(AuditEvent.action == "session.started")).one()
    assert started.actor == f"user:{row.user_id}"


def test_a_wrong_key_is_refused_on_the_form(client: TestClient) -> None:
    page = client.get("/console/sign-in")
    resp = client.post(
        "/console/sign-in",
        data={"api_key": "wg_" + "x" * 43, "csrf_token": form_token(page.text)},
        headers={"Origin": ORIGIN},
    )
    assert resp.status_code == 401
    assert "unknown, revoked or expired" in resp.text
    assert "wg_session" not in resp.headers.get("set-cookie", "")


def test_sign_in_needs_its_form_token_and_origin(client: TestClient, admin_key: str) -> None:
    page = client.get("/console/sign-in")
    token = form_token(page.text)
    no_token = client.post(
        "/console/sign-in", data={"api_key": admin_key}, headers={"Origin": ORIGIN}
    )
    assert no_token.status_code == 403
    assert "expired or was sent from elsewhere" in no_token.text
    cross = client.post(
        "/console/sign-in",
        data={"api_key": admin_key, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert "another site" in cross.text
    assert "wg_session" not in client.cookies


def test_next_never_leaves_the_console(client: TestClient, admin_key: str) -> None:
    for target in ("https://evil.example/", "//evil.example/console/", "/v1/me", "/console\\x"):
        client.cookies.clear()
        page = client.get("/console/sign-in", params={"next": target})
        resp = client.post(
            "/console/sign-in",
            data={"api_key": admin_key, "csrf_token": form_token(page.text), "next": target},
            headers={"Origin": ORIGIN},
            follow_redirects=False,
        )
        assert resp.headers["location"] == "/console/", target


def test_pages_send_an_unsigned_browser_to_sign_in(client: TestClient) -> None:
    resp = client.get("/console/upcoming?days=30", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fupcoming%3Fdays%3D30"
    htmx = client.get("/console/upcoming", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"].startswith("/console/sign-in")


def test_idle_timeout_and_absolute_lifetime(
    client: TestClient, clock: FixedClock, admin_key: str
) -> None:
    sign_in(client, admin_key)
    # Used every 20 minutes, the session lives on past the 30-minute idle timeout...
    for _ in range(5):
        clock.advance(minutes=20)
        assert client.get("/console/models", follow_redirects=False).status_code == 200
    # ...but not 31 minutes after its last request.
    clock.advance(minutes=31)
    assert client.get("/console/models", follow_redirects=False).status_code == 303
    sign_in(client, admin_key)
    for _ in range(36):  # 12 h of use, a request every 20 minutes
        clock.advance(minutes=20)
        client.get("/console/models", follow_redirects=False)
    assert client.get("/console/models", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session_everywhere(
    client: TestClient, app: object, db: Session, admin_key: str
) -> None:
    csrf = sign_in(client, admin_key)
    stolen = dict(client.cookies)
    resp = client.post(
        "/console/sign-out",
        data={"csrf_token": csrf},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/sign-in"
    # A copy of the cookie (another tab, a thief) no longer opens anything.
    with TestClient(app, cookies=stolen) as other:  # type: ignore[arg-type]
        assert other.get("/console/models", follow_redirects=False).status_code == 303
    assert db.scalars(select(BrowserSession)).one().ended_at is not None


def test_disabling_a_user_ends_their_session_on_the_next_request(
    client: TestClient, app: object, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    user, key = make_user(db, clock, role="admin", email="second@example.org")
    with TestClient(app) as browser:  # type: ignore[arg-type]
        sign_in(browser, key)
        assert browser.get("/console/models").status_code == 200
        resp = client.patch(f"/v1/users/{user.id}", json={"disabled": True}, headers=admin_headers)
        assert resp.status_code == 200, resp.text
        assert browser.get("/console/models", follow_redirects=False).status_code == 303
        # Re-enabling the user does not bring the ended session back.
        client.patch(f"/v1/users/{user.id}", json={"disabled": False}, headers=admin_headers)
        assert browser.get("/console/models", follow_redirects=False).status_code == 303
    row = db.scalars(select(BrowserSession).where(BrowserSession.user_id == user.id)).one()
    assert row.ended_at == clock.now()


def test_cookie_is_secure_and_host_prefixed_behind_https(
    settings: Settings,
    clock: FixedClock,
    store: object,
    engine: object,
    session_factory: object,
    admin_key: str,
) -> None:
    from app.main import create_app

    https = settings.model_copy(update={"public_url": "https://weights.example"})
    application = create_app(
        https,
        clock=clock,
        store=store,  # type: ignore[arg-type]
        engine=engine,
        sessions=session_factory,  # type: ignore[arg-type]
        run_background=False,
    )
    with TestClient(application, base_url="https://weights.example") as c:
        page = c.get("/console/sign-in")
        assert "secure" in page.headers["set-cookie"].lower()
        resp = c.post(
            "/console/sign-in",
            data={"api_key": admin_key, "csrf_token": form_token(page.text)},
            headers={"Origin": "https://weights.example"},
            follow_redirects=False,
        )
        cookie = next(
            v for k, v in resp.headers.multi_items() if k == "set-cookie" and "wg_session" in v
        )
        assert cookie.startswith("__Host-wg_session=")
        flags = {p.strip().lower() for p in cookie.split(";")}
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags
