"""The console's pages as plain HTML: security headers, CSRF and Origin on unsafe
requests, admin pages hidden from researchers, markup shown as text, the Upcoming page
and a release's timeline, static files with cache headers."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.console.security import CONTENT_SECURITY_POLICY
from app.models import BrowserSession
from tests.console.signin import ORIGIN, sign_in
from tests.factories.catalogue import check, publish_release
from tests.factories.principals import make_user

W = {"w.bin": ("w", b"w")}
ADMIN_PAGES = [
    "/console/upcoming",
    "/console/models",
    "/console/models/acme/a",
    "/console/models/acme/a/releases/v1",
    "/console/webhooks",
    "/console/users",
    "/console/partners",
]


def publish_a(client: TestClient, headers: dict[str, str], clock: FixedClock) -> None:
    t = clock.now()
    publish_release(
        client,
        headers,
        model="acme/a",
        components={
            "weights": [
                ("partner", t - timedelta(days=1)),
                ("research", t + timedelta(hours=5)),
                ("open", t + timedelta(days=20)),
            ],
            "config": [("open", t - timedelta(days=2))],
        },
    )


def test_signed_in_pages_carry_the_security_headers(
    client: TestClient, admin_key: str, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_a(client, admin_headers, clock)
    sign_in(client, admin_key)
    for path in [*ADMIN_PAGES, "/console/sign-in", "/console/nope"]:
        resp = client.get(path, follow_redirects=False)
        assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        assert "unsafe" not in CONTENT_SECURITY_POLICY
        assert resp.headers["referrer-policy"] == "same-origin"
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["x-frame-options"] == "DENY"
        if resp.status_code == 200:
            # No inline script and no inline style anywhere: only files from /console/static.
            assert not re.search(r"<script(?![^>]*\ssrc=)", resp.text), path
            assert " style=" not in resp.text, path
            assert "<style" not in resp.text, path
    # The API keeps its own headers.
    api = client.get("/v1/models", headers=admin_headers).headers
    assert api["content-security-policy"] != CONTENT_SECURITY_POLICY


def test_unsafe_requests_need_the_csrf_token_and_origin(
    client: TestClient, db: Session, admin_key: str
) -> None:
    csrf = sign_in(client, admin_key)
    cases = [
        ({"csrf_token": csrf}, {"Origin": "https://evil.example"}, "another site"),
        ({"csrf_token": csrf}, {}, "no Origin header"),
        ({}, {"Origin": ORIGIN}, "security token is missing or stale"),
        ({"csrf_token": "x" * 43}, {"Origin": ORIGIN}, "security token is missing or stale"),
    ]
    for data, headers, message in cases:
        resp = client.post("/console/sign-out", data=data, headers=headers, follow_redirects=False)
        assert resp.status_code == 403, resp.text
        assert message in resp.text
        assert resp.headers["content-type"].startswith("text/html")
        # Nothing changed: the session is still open.
        assert db.scalars(select(BrowserSession)).one().ended_at is None
        assert client.get("/console/models", follow_redirects=False).status_code == 200
    # The token may come as the header htmx sends, with a Referer instead of an Origin.
    ok = client.post(
        "/console/sign-out",
        headers={"X-CSRF-Token": csrf, "Referer": ORIGIN + "/console/models"},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_a_researcher_gets_404_for_every_admin_page(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    admin_headers: dict[str, str],
) -> None:
    publish_a(client, admin_headers, clock)
    _, key = make_user(db, clock, role="researcher")
    sign_in(client, key)
    unknown = client.get("/console/no-such-page")
    assert unknown.status_code == 404
    missing = "/console/models/acme/missing/releases/v9"
    by_id = ["/console/webhooks/1", "/console/users/1", "/console/partners/1"]
    for path in [*ADMIN_PAGES, missing, *by_id]:
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 404, path
        # Exactly the page an unknown URL gets: nothing tells an admin page apart.
        assert resp.text == unknown.text
    home = client.get("/console/")
    assert home.status_code == 200
    assert "/console/upcoming" not in home.text


def test_markup_in_names_and_reasons_is_shown_as_text(
    client: TestClient, admin_key: str, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    t = clock.now()
    check(
        client.post(
            "/v1/models",
            json={"id": "acme/x", "display_name": "<img src=x onerror=alert(1)>", "license": "ok"},
            headers=admin_headers,
        ),
        201,
    )
    publish_release(
        client,
        admin_headers,
        model="acme/y",
        components={"w": [("open", t + timedelta(hours=2))]},
        files=W,
    )
    reason = "<script>alert('held')</script>"
    check(
        client.post(
            "/v1/models/acme/y/releases/v1/components/w/schedule/hold",
            json={"reason": reason},
            headers=admin_headers,
        ),
        200,
    )
    sign_in(client, admin_key)
    models = client.get("/console/models").text
    assert "<img src=x" not in models
    assert "&lt;img src=x onerror=alert(1)&gt;" in models
    for page in (
        client.get("/console/upcoming").text,
        client.get("/console/models/acme/y/releases/v1").text,
    ):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#39;held&#39;)&lt;/script&gt;" in page


def test_upcoming_lists_risks_first_then_lifts(
    client: TestClient, admin_key: str, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_a(client, admin_headers, clock)
    t = clock.now()
    publish_release(
        client,
        admin_headers,
        model="acme/b",
        components={"w": [("open", t + timedelta(days=3))]},
        files=W,
    )
    publish_release(
        client,
        admin_headers,
        model="acme/c",
        components={"w": [("research", t - timedelta(days=3))]},
        files=W,
    )
    check(
        client.post(
            "/v1/models/acme/b/releases/v1/components/w/schedule/hold",
            json={"reason": "eval pending"},
            headers=admin_headers,
        ),
        200,
    )
    check(
        client.post(
            "/v1/models/acme/c/releases/v1/components/w/schedule/restrict",
            json={"tier": "partner", "reason": "leak"},
            headers=admin_headers,
        ),
        200,
    )
    sign_in(client, admin_key)
    page = client.get("/console/upcoming").text
    risk = page.split('id="risk-h"')[1].split('id="lifts-h"')[0]
    order = list(re.findall(r"acme/[abc]@v1/\w+", risk))
    assert order == ["acme/b@v1/w", "acme/a@v1/weights", "acme/c@v1/w"]
    assert "held: eval pending" in risk
    assert "opens to research" in risk
    assert "restricted to partner: leak" in risk
    lifts = page.split('id="lifts-h"')[1].split('id="reminders-h"')[0]
    # 7 days: a's research lift (5 h) and b's held open stage (3 d); a's open stage (20 d) not.
    assert re.findall(r"acme/[abc]@v1/\w+", lifts) == ["acme/a@v1/weights", "acme/b@v1/w"]
    assert "(held)" in lifts
    assert "2026-06-01 17:00 UTC" in lifts  # T0 + 5 h, in UTC without a zone cookie
    month = (
        client.get("/console/upcoming?days=30")
        .text.split('id="lifts-h"')[1]
        .split('id="reminders-h"')[0]
    )
    assert "acme/a@v1/weights" in month
    assert month.count("acme/a@v1/weights") == 2
    assert client.get("/console/upcoming?days=9").status_code == 422


def test_times_are_shown_in_the_viewers_zone_with_utc_beside(
    client: TestClient, admin_key: str, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_a(client, admin_headers, clock)
    sign_in(client, admin_key)
    client.cookies.set("wg_tz", "Asia/Tokyo", path="/console")
    page = client.get("/console/models/acme/a/releases/v1").text
    # T0 + 5 h = 17:00 UTC = 02:00 JST the next day.
    shown = "2026-06-02 02:00 JST (2026-06-01 17:00 UTC)"
    assert f'<time datetime="2026-06-01T17:00:00+00:00">{shown}</time>' in page
    assert "times in Asia/Tokyo" in page
    client.cookies.set("wg_tz", "../../etc/passwd", path="/console")
    assert "times in UTC" in client.get("/console/models/acme/a/releases/v1").text


def test_release_timeline_shows_components_svg_and_files(
    client: TestClient, admin_key: str, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_a(client, admin_headers, clock)
    sign_in(client, admin_key)
    page = client.get("/console/models/acme/a/releases/v1").text
    weights = page.split('id="c-weights"')[1]
    assert "Next: opens to <strong>research</strong>" in weights
    svg = weights.split("<svg")[1].split("</svg>")[0]
    assert 'role="img"' in svg
    assert "tl-now" in svg
    assert "partner past at 2026-05-31 12:00 UTC" in svg
    assert "research upcoming at 2026-06-01 17:00 UTC" in svg
    assert svg.count('class="tl-mark tl-done"') == 1
    assert svg.count('class="tl-mark tl-open"') == 2
    files = weights.split("<details>")[1]
    assert re.search(r"<code class=\"hash\">[0-9a-f]{64}</code>", files)


def test_static_files_are_versioned_and_cached(client: TestClient) -> None:
    page = client.get("/console/sign-in").text
    url = re.search(r'src="(/console/static/htmx\.min\.js\?v=[0-9a-f]{16})"', page).group(1)  # type: ignore[union-attr]
    resp = client.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/javascript")
    assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert resp.content.startswith(b"var htmx=")
    again = client.get(url, headers={"If-None-Match": resp.headers["etag"]})
    assert again.status_code == 304
    stale = client.get("/console/static/console.css?v=0000")
    assert stale.headers["cache-control"] == "no-cache"
    assert client.get("/console/static/..%2Fsign_in.py").status_code == 404
