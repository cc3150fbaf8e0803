"""Principals and webhooks in Debian's chromium against a live server (its scheduler and
delivery loop running): an admin finds a user, changes the role with the keyboard, disables
them — the user's open session stops on its next request — and re-enables them; creates a
partner, rotates its secret with a grace period and then as a leak (checked through the
API), ends its agreement (the partner's token request is refused); subscribes a webhook
whose URL holds markup (shown inert), sees a failed delivery and redelivers it to a local
receiver that now answers 200. Each page is scanned by axe-core and photographed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.console.conftest import Console, screenshot, serious_violations, sign_in
from tests.fixtures.databases import fresh_database
from tests.fixtures.receiver import fail_first, webhook_receiver
from tests.fixtures.servers import create_user, live_server, publish_over_http

pytestmark = pytest.mark.slow

MODEL = "acme/atlas-7b"
XSS = "<img src=x onerror=alert(1)>"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """This module's own server: the delivery loop runs (the scheduler is on), receivers on
    127.0.0.1 are allowed, and a failed attempt past a one-second horizon is final."""
    tmp = tmp_path_factory.mktemp("principals")
    with fresh_database(tmp, label="principals") as url:
        env = {
            "WEIGHTGATE_DATABASE_URL": url,
            "WEIGHTGATE_WEBHOOK_ALLOW_PRIVATE": "true",
            "WEIGHTGATE_WEBHOOK_HORIZON_SECONDS": "1",
        }
        with live_server(env, tmp=tmp) as server:
            console = Console(server, create_user(server, "admin@example.org", "admin"))
            now = datetime.now(UTC).replace(microsecond=0)
            publish_over_http(
                console.url,
                console.admin_key,
                MODEL,
                components={"weights": [("partner", iso(now - timedelta(days=1)))]},
                files={"w.bin": ("weights", b"w" * 64)},
            )
            yield console


@pytest.fixture
def admin(console: Console, browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """The admin's tab. It confirms what the console asks to confirm (disable, rotate, end);
    any other dialog — an alert() that markup managed to run — is recorded and dismissed."""
    context = browser.new_context(timezone_id="Europe/Paris", locale="en-GB")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    alerts: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        if dialog.type == "confirm":
            dialog.accept()
        else:
            alerts.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

    tab.on("dialog", on_dialog)
    sign_in(tab, console.url, console.admin_key)
    yield tab, alerts
    context.close()


def check_page(page: Page, name: str) -> None:
    screenshot(page, name)
    assert serious_violations(page) == [], name


def api(console: Console) -> httpx.Client:
    headers = {"Authorization": f"Bearer {console.admin_key}"}
    return httpx.Client(base_url=console.url, headers=headers, timeout=30)


def oauth(console: Console, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        console.url + "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    )


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until ``selector`` has the focus (keyboard-only use of the page)."""
    target = page.locator(selector)
    for _ in range(120):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail(f"{selector} cannot be reached with the keyboard")


def test_admin_manages_a_user_whose_session_ends_when_disabled(
    console: Console, browser: Browser, admin: tuple[Page, list[str]]
) -> None:
    page, alerts = admin
    ada_key = console.user("ada@lab.example")
    console.user("bob@elsewhere.example")
    theirs = browser.new_context()
    try:
        their_tab = theirs.new_page()
        sign_in(their_tab, console.url, ada_key)

        page.get_by_role("link", name="Users").click()
        page.get_by_label("Email or name contains").fill("lab.EXAMPLE")
        page.get_by_role("button", name="Find").click()
        expect(page.get_by_role("link", name="ada@lab.example")).to_be_visible()
        expect(page.get_by_role("link", name="bob@elsewhere.example")).to_have_count(0)
        check_page(page, "users")
        page.get_by_role("link", name="ada@lab.example").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("ada@lab.example")
        expect(page.locator("#keys + div table")).to_contain_text("initial")

        # Keyboard only: Tab to the role, pick "admin", Tab to the button, Enter.
        tab_to(page, "#role")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Change role")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text("Role changed.")
        with api(console) as c:
            (ada,) = c.get("/v1/users", params={"q": "ada@"}).json()["items"]
        assert ada["role"] == "admin"

        page.get_by_role("button", name="Disable").click()
        expect(page.get_by_role("status")).to_contain_text("Disabled: their sessions ended")
        # Their open session stops on its very next request.
        their_tab.reload()
        expect(their_tab).to_have_url(re.compile(r".*/console/sign-in\?next="))
        me = httpx.get(console.url + "/v1/me", headers={"Authorization": f"Bearer {ada_key}"})
        assert me.status_code == 401

        page.get_by_role("button", name="Enable").click()
        expect(page.get_by_role("status")).to_contain_text("Enabled")
        me = httpx.get(console.url + "/v1/me", headers={"Authorization": f"Bearer {ada_key}"})
        assert me.status_code == 200
        trail = page.locator("#trail + div table tbody")
        # Created, signed in, role changed, disabled, enabled; newest first.
        expect(trail.get_by_role("row")).to_have_count(5)
        expect(trail.get_by_role("row").first).to_contain_text("user.updated")
        check_page(page, "user")
    finally:
        theirs.close()
    assert alerts == []


def test_admin_creates_a_partner_rotates_its_secret_and_ends_the_agreement(
    console: Console, admin: tuple[Page, list[str]]
) -> None:
    page, alerts = admin
    page.get_by_role("link", name="Partners").click()
    page.get_by_label("Name", exact=True).fill(f"Lab {XSS}")
    page.get_by_label("Models the agreement covers").fill(MODEL)
    page.get_by_role("button", name="Create partner").click()
    first = page.locator("#new-secret").inner_text().strip()
    assert first.startswith("wgp_")
    expect(page.get_by_role("link", name=f"Lab {XSS}")).to_have_count(2)  # notice and table
    check_page(page, "partners")
    client_id = re.findall(r"wgc_[0-9a-f]+", page.locator("main").inner_text())[0]
    assert oauth(console, client_id, first).status_code == 200

    page.get_by_role("link", name=f"Lab {XSS}").first.click()
    # A planned rotation: the old secret keeps working for the grace period.
    page.get_by_label("Amount").fill("1")
    page.get_by_label("Unit").select_option("hours")
    page.get_by_role("button", name="Rotate secret").click()
    second = page.locator("#new-secret").inner_text().strip()
    assert second not in ("", first)
    expect(page.locator("main")).to_contain_text("The old secret keeps working until")
    assert oauth(console, client_id, first).status_code == 200
    assert oauth(console, client_id, second).status_code == 200
    # After a leak (grace 0): the new one alone works, the old ones stop at once.
    page.get_by_label("Amount").fill("0")
    page.get_by_role("button", name="Rotate secret").click()
    third = page.locator("#new-secret").inner_text().strip()
    expect(page.locator("main")).to_contain_text("The old secret no longer works")
    assert [oauth(console, client_id, s).status_code for s in (first, second, third)] == [
        401,
        401,
        200,
    ]
    check_page(page, "partner-admin")

    token = oauth(console, client_id, third).json()["access_token"]
    as_partner = {"Authorization": f"Bearer {token}"}
    asked = httpx.post(console.url + "/v1/tokens", json={"model": MODEL}, headers=as_partner)
    assert asked.status_code == 201, asked.text
    page.get_by_role("button", name=f"End the agreement on {MODEL} now").click()
    expect(page.get_by_role("status")).to_contain_text("Agreement ended")
    fresh = oauth(console, client_id, third).json()["access_token"]
    refused = httpx.post(
        console.url + "/v1/tokens",
        json={"model": MODEL},
        headers={"Authorization": f"Bearer {fresh}"},
    )
    assert refused.status_code in (403, 404), refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    trail = page.locator("#trail + div table tbody")
    expect(trail.get_by_role("row")).to_have_count(4)  # created, rotated twice, ended
    assert alerts == []


def test_admin_redelivers_a_failed_delivery(
    console: Console, admin: tuple[Page, list[str]]
) -> None:
    page, alerts = admin
    with webhook_receiver(fail_first(1, status=503)) as receiver:
        url = receiver.url + "?note=" + XSS
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_label("URL (https").fill(url)
        page.get_by_label("embargo.held").check()
        page.get_by_role("button", name="Subscribe").click()
        assert page.locator("#new-secret").inner_text().startswith("whsec_")
        expect(page.locator("main code.url").first).to_have_text(url)
        check_page(page, "webhooks")
        page.get_by_role("link", name=re.compile(r"Webhook \d+: deliveries")).first.click()

        with api(console) as c:
            c.post(
                f"/v1/models/{MODEL}/releases/v1/components/weights/schedule/hold",
                json={"reason": "evals"},
            ).raise_for_status()
        assert receiver.wait_for(lambda got: len(got) == 1, timeout=30)
        failed = page.locator("table.deliveries tbody tr").first
        for _ in range(60):  # the loop records the 503 just after the receiver answered it
            page.reload()
            if "failed" in failed.inner_text():
                break
        expect(failed).to_contain_text("HTTP 503")

        tab_to(page, "table.deliveries tbody tr >> nth=0 >> button")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("Queued for redelivery")
        assert receiver.wait_for(lambda got: any(r.status == 200 for r in got), timeout=30)
        got = receiver.snapshot()
        assert [r.status for r in got] == [503, 200]
        assert len({r.event_id for r in got}) == 1  # the same idempotency id
        for _ in range(60):
            page.reload()
            if "delivered" in failed.inner_text():
                break
        expect(failed).to_contain_text("delivered")
        expect(failed.locator("ol.attempts li")).to_have_count(2)
        check_page(page, "webhook-deliveries")
    assert alerts == []
    with api(console) as c:
        events = c.get("/v1/audit", params={"action": "webhook.*"}).json()["items"]
    assert [e["action"] for e in events] == ["webhook.redelivered", "webhook.created"]
