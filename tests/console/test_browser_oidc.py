"""Console sign-in through OpenID Connect against a real provider (oidc-provider-mock,
started by the test, over HTTP): an admin signs in, an email of a domain that is not
allowed is refused, a new researcher is created on first sign-in, and a user disabled by
an admin is signed out on their next request."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, screenshot, serious_violations
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import create_user, free_port, live_server, stop, wait_http

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The provider in a process of its own (in this one, pytest's warnings-as-errors would
    break it: it still uses authlib's deprecated JOSE module)."""
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oidc_provider_mock",
                "--port",
                str(port),
                "--require-nonce",
                "true",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/.well-known/openid-configuration", proc=proc)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, provider: str) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console-oidc")
    with fresh_database(tmp, label="oidc") as url:
        env = {
            "WEIGHTGATE_DATABASE_URL": url,
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
            "WEIGHTGATE_OIDC_ISSUER": provider,
            "WEIGHTGATE_OIDC_CLIENT_ID": "weightgate-console",
            "WEIGHTGATE_OIDC_CLIENT_SECRET": "console-secret",
            "WEIGHTGATE_OIDC_ALLOWED_DOMAINS": "lab.example",
            "WEIGHTGATE_OIDC_CREATE_USERS": "true",
        }
        with live_server(env, tmp=tmp) as server:
            yield Console(server, create_user(server, "boss@lab.example", "admin"))


def provider_user(provider: str, email: str, *, verified: bool = True) -> None:
    r = httpx.put(
        f"{provider}/users/{email}", json={"email": email, "email_verified": verified, "name": "X"}
    )
    assert r.status_code == 204, r.text


def sign_in_with_provider(page: Page, console: Console, email: str) -> None:
    page.goto(console.url + "/console/sign-in")
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    page.locator("input[name=sub]").fill(email)
    # The way back does discovery, the code exchange and the key fetch (cold on the first
    # sign-in): on a loaded machine that outlasts the default wait for the navigation.
    page.get_by_role("button", name="Authorize").click(no_wait_after=True)
    page.wait_for_url(re.compile(r".*/console/(?!sign-in|oidc/start).*"), timeout=60_000)


def test_an_admin_signs_in_through_the_provider(
    console: Console, provider: str, page: Page
) -> None:
    provider_user(provider, "boss@lab.example")
    page.goto(console.url + "/console/sign-in")
    assert serious_violations(page) == []
    sign_in_with_provider(page, console, "boss@lab.example")
    expect(page).to_have_url(console.url + "/console/upcoming")
    expect(page.locator(".who")).to_contain_text("boss@lab.example (admin)")
    screenshot(page, "oidc-signed-in")
    events = httpx.get(
        console.url + "/v1/audit",
        params={"action": "session.started"},
        headers={"Authorization": f"Bearer {console.admin_key}"},
    ).json()["items"]
    assert events[0]["data"]["method"] == "oidc"


def test_an_unknown_email_domain_is_refused(console: Console, provider: str, page: Page) -> None:
    provider_user(provider, "eve@other.example")
    sign_in_with_provider(page, console, "eve@other.example")
    expect(page.get_by_role("alert")).to_have_text("accounts of other.example may not sign in here")
    expect(page).to_have_url(re.compile(re.escape(console.url) + "/console/oidc/callback"))
    assert page.goto(console.url + "/console/upcoming") is not None
    expect(page).to_have_url(re.compile(".*/console/sign-in.*"))
    # An unverified email is refused too, whatever its domain.
    provider_user(provider, "unverified@lab.example", verified=False)
    sign_in_with_provider(page, console, "unverified@lab.example")
    expect(page.get_by_role("alert")).to_contain_text("did not vouch for an email address")


def test_a_disabled_users_session_stops_on_its_next_request(
    console: Console, provider: str, page: Page
) -> None:
    provider_user(provider, "new.researcher@lab.example")
    sign_in_with_provider(page, console, "new.researcher@lab.example")
    expect(page.locator(".who")).to_contain_text("new.researcher@lab.example (researcher)")
    admin = {"Authorization": f"Bearer {console.admin_key}"}
    users = httpx.get(console.url + "/v1/users", headers=admin).json()["items"]
    (me,) = [u for u in users if u["email"] == "new.researcher@lab.example"]
    page.reload()
    expect(page.locator(".who")).to_contain_text("new.researcher@lab.example")
    r = httpx.patch(f"{console.url}/v1/users/{me['id']}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200, r.text
    page.reload()
    expect(page).to_have_url(re.compile(".*/console/sign-in.*"))
    # Signing in through the provider again is refused while disabled.
    sign_in_with_provider(page, console, "new.researcher@lab.example")
    expect(page.get_by_role("alert")).to_have_text(
        "the account new.researcher@lab.example is disabled"
    )
