"""The researcher's and partner's console pages as plain HTML: each goes through the API's
services (visibility, request validation, tokens, keys, partner rotation) and shows only the
signed-in user's own things."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.console.signin import ORIGIN, form_token, sign_in
from tests.factories.access import create_partner
from tests.factories.catalogue import check, publish_release
from tests.factories.principals import make_user
from tests.fixtures.parts import change_settings

MODEL = "acme/atlas-7b"
PAGE = "/console/catalogue/" + MODEL
FIELDS = [
    {"name": "affiliation", "type": "text", "required": True},
    {"name": "use", "type": "select", "options": ["research", "teaching"], "required": True},
    {"name": "agree_no_redistribution", "type": "checkbox", "required": True},
]


def _publish(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> None:
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        components={
            "config": [("open", now - timedelta(days=1))],
            "weights": [("research", now - timedelta(hours=1))],
            "safety": [
                ("partner", now - timedelta(hours=1)),
                ("research", now + timedelta(days=2)),
            ],
        },
        files={
            "config.json": ("config", b"{}"),
            "w.bin": ("weights", b"w" * 10),
            "s.bin": ("safety", b"s"),
        },
    )
    check(
        client.patch(
            f"/v1/models/{MODEL}",
            json={"request_fields": FIELDS, "license": "Use <b>kindly</b>."},
            headers=admin_headers,
        ),
        200,
    )
    publish_release(
        client,
        admin_headers,
        model="acme/hidden",
        components={"weights": [("open", now + timedelta(days=3))]},
    )


def _post(client: TestClient, path: str, csrf: str, data: dict[str, Any]) -> Any:
    return client.post(
        path, data={"csrf_token": csrf, **data}, headers={"Origin": ORIGIN}, follow_redirects=False
    )


def _states(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr id="c-([^"]+)">.*?data-state="([^"]+)"', html, re.S))


def test_catalogue_model_page_and_request_flow(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _publish(client, admin_headers, clock)
    _, key = make_user(db, clock, email="ada@uni.example")
    csrf = sign_in(client, key)
    listing = client.get("/console/catalogue", params={"q": "ATLAS"})
    assert MODEL in listing.text
    assert "1 of 3 components" in listing.text  # config only, for now
    assert "acme/hidden" not in client.get("/console/catalogue").text
    page = client.get(PAGE)
    assert page.status_code == 200
    assert _states(page.text) == {
        "config": "downloadable",
        "weights": "needs_grant",
        "safety": "needs_grant",
    }
    assert "Use &lt;b&gt;kindly&lt;/b&gt;." in page.text  # the license, as text
    # A hidden model, a missing one and a missing page: one and the same 404.
    unknown = client.get("/console/no-such-page")
    for path in ("/console/catalogue/acme/hidden", "/console/catalogue/acme/ghost"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert resp.text == unknown.text

    form = client.get(PAGE + "/request")
    sha = re.search(r'name="license_sha256" value="([0-9a-f]{64})"', form.text)
    assert sha is not None
    # Validated as the API validates: an option not offered is refused, nothing recorded.
    bad = _post(
        client,
        PAGE + "/request",
        csrf,
        {
            "answer.affiliation": "Uni",
            "answer.use": "mining",
            "answer.agree_no_redistribution": "yes",
            "accept_license": "yes",
            "license_sha256": sha.group(1),
        },
    )
    assert bad.status_code == 422
    assert "use" in bad.text
    assert 'value="Uni"' in bad.text
    unaccepted = _post(
        client,
        PAGE + "/request",
        csrf,
        {"answer.affiliation": "Uni", "answer.use": "research", "license_sha256": sha.group(1)},
    )
    assert unaccepted.status_code == 422
    assert "accept_license" in unaccepted.text
    assert check(client.get("/v1/access-requests", headers=admin_headers), 200)["items"] == []
    sent = _post(
        client,
        PAGE + "/request",
        csrf,
        {
            "answer.affiliation": "Uni <script>x</script>",
            "answer.use": "research",
            "answer.agree_no_redistribution": "yes",
            "accept_license": "yes",
            "license_sha256": sha.group(1),
        },
    )
    assert sent.status_code == 303
    assert "pending" in client.get(PAGE).text
    queue = check(client.get("/v1/access-requests", headers=admin_headers), 200)["items"]
    assert queue[0]["answers"] == {
        "affiliation": "Uni <script>x</script>",
        "use": "research",
        "agree_no_redistribution": True,
    }
    assert queue[0]["license_sha256"] == sha.group(1)
    check(
        client.post(
            f"/v1/access-requests/{queue[0]['id']}/deny",
            json={"reason": "Need an institutional email"},
            headers=admin_headers,
        ),
        200,
    )
    mine = client.get("/console/access")
    assert "denied" in mine.text
    assert "Need an institutional email" in mine.text
    again = _post(
        client,
        PAGE + "/request",
        csrf,
        {
            "answer.affiliation": "Uni",
            "answer.use": "teaching",
            "answer.agree_no_redistribution": "yes",
            "accept_license": "yes",
            "license_sha256": sha.group(1),
        },
    )
    assert again.status_code == 303
    second = check(client.get("/v1/access-requests", headers=admin_headers), 200)["items"][-1]
    check(client.post(f"/v1/access-requests/{second['id']}/approve", headers=admin_headers), 200)
    approved = client.get(PAGE)
    assert "approved" in approved.text
    assert _states(approved.text) == {
        "config": "downloadable",
        "weights": "downloadable",
        "safety": "opens",
    }
    access = client.get("/console/access")
    assert 'data-state="opens"' in access.text
    assert "active" in access.text


def test_download_token_page_shows_the_token_once_with_commands(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _publish(client, admin_headers, clock)
    _, key = make_user(db, clock)
    csrf = sign_in(client, key)
    form = client.get(PAGE + "/download")
    assert 'value="config"' in form.text
    assert 'value="weights"' not in form.text
    # A component the user may not download: the API's refusal, on the form.
    refused = _post(client, PAGE + "/download", csrf, {"component": "weights", "version": "v1"})
    assert refused.status_code == 403
    problem = re.search(r'role="alert">([^<]*)</p>', refused.text)
    assert problem is not None
    assert "needs an approved access request" in problem.group(1)
    done = _post(
        client, PAGE + "/download", csrf, {"component": "config", "version": "v1", "ttl": "3600"}
    )
    assert done.status_code == 200
    token = re.search(r'<pre id="token-value"[^>]*>([^<]+)</pre>', done.text)
    assert token is not None
    assert done.headers["cache-control"] == "no-store"
    # The component's files and its signature file (#22).
    assert "hf download acme/atlas-7b config.json signatures/config.sig --revision" in done.text
    assert "weightgate download acme/atlas-7b@v1 --component config" in done.text
    assert f"WG_DOWNLOAD_TOKEN={token.group(1)}" in done.text
    got = client.get(
        "/v1/files/acme/atlas-7b/v1/config.json",
        headers={"Authorization": f"Bearer {token.group(1)}"},
    )
    assert got.status_code == 200
    assert got.content == b"{}"
    # Without the form's token, or from another site: refused, no token issued.
    for headers, data in (
        ({"Origin": ORIGIN}, {}),
        ({"Origin": "https://evil.example"}, {"csrf_token": csrf}),
    ):
        resp = client.post(
            PAGE + "/download", data={"component": "config", **data}, headers=headers
        )
        assert resp.status_code == 403


def test_keys_are_created_once_and_revoked_only_by_their_owner(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    other, _ = make_user(db, clock)
    _, key = make_user(db, clock)
    csrf = sign_in(client, key)
    made = _post(client, "/console/keys", csrf, {"name": "laptop", "expires_in_days": "30"})
    assert made.status_code == 200
    shown = re.search(r'<pre id="new-key"[^>]*>(wg_[^<]+)</pre>', made.text)
    assert shown is not None
    assert check(client.get("/v1/me", headers={"Authorization": f"Bearer {shown.group(1)}"}), 200)
    page = client.get("/console/keys")
    assert shown.group(1) not in page.text  # shown once
    assert "laptop" in page.text
    bad = _post(client, "/console/keys", csrf, {"expires_in_days": "0"})
    assert bad.status_code == 422
    others = check(client.get(f"/v1/users/{other.id}/api-keys", headers=admin_headers), 200)
    foreign = _post(client, f"/console/keys/{others['items'][0]['id']}/revoke", csrf, {})
    assert foreign.status_code == 404
    mine = re.findall(r'action="/console/keys/(\d+)/revoke"', page.text)
    revoked = _post(client, f"/console/keys/{mine[-1]}/revoke", csrf, {})
    assert revoked.status_code == 303
    assert (
        client.get("/v1/me", headers={"Authorization": f"Bearer {shown.group(1)}"}).status_code
        == 401
    )


def test_partner_page_for_its_people_only(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _publish(client, admin_headers, clock)
    partner = create_partner(client, admin_headers, name="Lab <A>", models=[MODEL])
    member, member_key = make_user(db, clock, email="ops@lab-a.example")
    check(
        client.patch(
            f"/v1/users/{member.id}", json={"partner_id": partner["id"]}, headers=admin_headers
        ),
        200,
    )
    _, researcher_key = make_user(db, clock)
    sign_in(client, researcher_key)
    unknown = client.get("/console/no-such-page")
    page = client.get("/console/partner")
    assert page.status_code == 404
    assert page.text == unknown.text
    assert 'href="/console/partner"' not in client.get("/console/catalogue").text
    client.cookies.clear()
    csrf = sign_in(client, member_key)
    page = client.get("/console/partner")
    assert page.status_code == 200
    assert partner["client_id"] in page.text
    assert "Lab &lt;A&gt;" in page.text
    assert "partner.created" in page.text
    rotated = _post(
        client, "/console/partner/rotate-secret", csrf, {"grace_amount": "1", "grace_unit": "hours"}
    )
    assert rotated.status_code == 200
    secret = re.search(r'<pre id="new-secret"[^>]*>(wgp_[^<]+)</pre>', rotated.text)
    assert secret is not None
    assert "keeps working until" in rotated.text
    bad = _post(
        client, "/console/partner/rotate-secret", csrf, {"grace_amount": "8", "grace_unit": "days"}
    )
    assert bad.status_code == 422


def test_sign_up_where_open_registration_is_on(
    client: TestClient, app: Any, db: Session, clock: FixedClock
) -> None:
    assert client.get("/console/sign-up").status_code == 404  # off by default
    change_settings(app, open_registration=True)
    form = client.get("/console/sign-up")
    assert form.status_code == 200
    token = form_token(form.text)
    done = client.post(
        "/console/sign-up",
        data={"csrf_token": token, "email": "new@uni.example", "name": "New"},
        headers={"Origin": ORIGIN},
    )
    assert done.status_code == 200, done.text
    key = re.search(r'<pre id="new-key"[^>]*>(wg_[^<]+)</pre>', done.text)
    assert key is not None
    me = check(client.get("/v1/me", headers={"Authorization": f"Bearer {key.group(1)}"}), 200)
    assert (me["email"], me["role"]) == ("new@uni.example", "researcher")
    assert client.get("/console/catalogue").status_code == 200  # signed in already
    client.cookies.clear()
    form = client.get("/console/sign-up")
    taken = client.post(
        "/console/sign-up",
        data={"csrf_token": form_token(form.text), "email": "NEW@uni.example"},
        headers={"Origin": ORIGIN},
    )
    assert taken.status_code == 409
    assert "already exists" in taken.text


def test_sign_up_has_the_apis_limits(client: TestClient, app: Any) -> None:
    change_settings(app, open_registration=True, quota_registrations_per_hour=1)

    def attempt(email: str) -> Any:
        client.cookies.clear()
        form = client.get("/console/sign-up")
        return client.post(
            "/console/sign-up",
            data={"csrf_token": form_token(form.text), "email": email},
            headers={"Origin": ORIGIN},
        )

    assert attempt("first@uni.example").status_code == 200
    over = attempt("second@uni.example")
    assert over.status_code == 429
    assert int(over.headers["retry-after"]) > 0
    assert 'value="second@uni.example"' in over.text
    # From another site, or without the form's token: refused before anything is tried.
    client.cookies.clear()
    client.get("/console/sign-up")
    forged = client.post(
        "/console/sign-up",
        data={"csrf_token": "x", "email": "third@uni.example"},
        headers={"Origin": ORIGIN},
    )
    assert forged.status_code == 403


def test_forms_are_bounded_as_the_api_bounds_them(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _publish(client, admin_headers, clock)
    _, key = make_user(db, clock)
    csrf = sign_in(client, key)
    nothing = _post(client, PAGE + "/download", csrf, {"version": "v1"})
    assert nothing.status_code == 422
    assert "Choose at least one component or file." in nothing.text
    many = client.post(
        PAGE + "/download",
        data={"csrf_token": csrf, "version": "v1", "path": [f"f{i}" for i in range(129)]},
        headers={"Origin": ORIGIN},
    )
    assert many.status_code == 422
    assert "paths: List should have at most 128 items" in many.text
    for days in ("abc", "9" * 5000, "0", "3651"):
        bad = _post(client, "/console/keys", csrf, {"expires_in_days": days})
        assert bad.status_code == 422, days
    long_name = _post(client, "/console/keys", csrf, {"name": "n" * 101})
    assert long_name.status_code == 422
    assert "name: String should have at most 100 characters" in long_name.text
    keys = check(client.get("/v1/me/api-keys", headers={"Authorization": f"Bearer {key}"}), 200)
    assert len(keys["items"]) == 1  # nothing was created by the refused forms
