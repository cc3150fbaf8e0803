"""The console in a real browser (Debian's chromium through Playwright) against a live
server: an admin signs in with a key and reads Upcoming and a release's timeline; every
admin page passes an axe-core scan; markup in names and reasons stays inert (no dialog
opens, no CSP violation is reported); a researcher's session gets 404 for admin pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, Watch, screenshot, serious_violations, sign_in
from tests.fixtures.servers import publish_over_http

pytestmark = pytest.mark.slow

MODEL = "acme/atlas-7b"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_REASON = "<script>alert('held')</script> waiting for evals"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def published(console: Console) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    publish_over_http(
        console.url,
        console.admin_key,
        MODEL,
        components={
            "weights": [
                ("partner", iso(now - timedelta(days=1))),
                ("research", iso(now + timedelta(hours=5))),
                ("open", iso(now + timedelta(days=10))),
            ],
            "config": [("open", iso(now - timedelta(days=2)))],
            "adapter": [("research", iso(now + timedelta(days=2)))],
        },
        files={
            "model.safetensors": ("weights", b"\x00" * 4096),
            "config.json": ("config", b"{}"),
            "adapter.bin": ("adapter", b"\x01" * 10),
        },
    )
    headers = {"Authorization": f"Bearer {console.admin_key}"}
    with httpx.Client(base_url=console.url, headers=headers) as c:
        c.patch(f"/v1/models/{MODEL}", json={"display_name": XSS_NAME}).raise_for_status()
        c.post(
            f"/v1/models/{MODEL}/releases/v1/components/adapter/schedule/hold",
            json={"reason": XSS_REASON},
        ).raise_for_status()
    return now


def test_admin_reads_upcoming_and_the_timeline(
    console: Console, published: datetime, page: Page, watch: Watch
) -> None:
    sign_in(page, console.url, console.admin_key)
    expect(page).to_have_url(console.url + "/console/upcoming")
    risks = page.locator("section", has=page.locator("#risk-h"))
    expect(risks.get_by_role("row")).to_have_count(3)  # header, adapter held, weights in 5 h
    expect(risks.get_by_role("row").nth(1)).to_contain_text("held: " + XSS_REASON)
    expect(risks.get_by_role("row").nth(2)).to_contain_text("opens to research")
    # The viewer is in Paris: local time first, UTC beside it.
    lift = published + timedelta(hours=5)
    local = lift.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    expect(risks).to_contain_text(f"{local:%Y-%m-%d %H:%M} CET ({lift:%Y-%m-%d %H:%M} UTC)")
    screenshot(page, "upcoming")
    assert serious_violations(page) == []

    page.get_by_role("link", name=f"{MODEL}@v1/weights").first.click()
    weights = page.locator("#c-weights")
    expect(weights).to_contain_text("Next: opens to research")
    timeline = weights.get_by_role("img", name="Schedule of acme/atlas-7b@v1/weights")
    expect(timeline).to_be_visible()
    assert "research upcoming at" in (timeline.get_attribute("aria-label") or "")
    # The weights file and the component's signature file (#22).
    weights.get_by_text(re.compile(r"^2 files, 5\.\d KiB$")).click()
    expect(weights.get_by_role("cell", name="model.safetensors")).to_be_visible()
    screenshot(page, "release-timeline")
    assert serious_violations(page) == []

    page.get_by_role("link", name=MODEL).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS_NAME)
    assert serious_violations(page) == []
    page.get_by_role("link", name="Models").first.click()
    expect(page.get_by_role("cell", name=XSS_NAME)).to_be_visible()
    screenshot(page, "models")
    assert serious_violations(page) == []
    # Markup in the display name and the hold reason was shown, never run.
    assert watch.dialogs == []
    assert watch.errors == []


def test_sign_in_page_is_accessible(console: Console, page: Page, watch: Watch) -> None:
    page.goto(console.url + "/console/upcoming")
    expect(page).to_have_url(console.url + "/console/sign-in?next=%2Fconsole%2Fupcoming")
    page.get_by_label("API key").fill("wg_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, revoked or expired")
    screenshot(page, "sign-in")
    assert serious_violations(page) == []
    assert watch.errors == [] or all("401" in e for e in watch.errors)


def test_a_researcher_gets_404_for_admin_pages(
    console: Console, published: datetime, page: Page
) -> None:
    sign_in(page, console.url, console.user("researcher@example.org"))
    unknown = page.goto(console.url + "/console/no-such-page")
    assert unknown is not None
    assert unknown.status == 404
    for path in (
        "/console/upcoming",
        "/console/models",
        f"/console/models/{MODEL}",
        f"/console/models/{MODEL}/releases/v1",
        "/console/users",
        "/console/users/1",
        "/console/partners",
        "/console/partners/1",
        "/console/webhooks",
        "/console/webhooks/1",
    ):
        resp = page.goto(console.url + path)
        assert resp is not None, path
        assert resp.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        expect(page.get_by_role("alert")).to_have_text("no such route")
