"""The researcher's and partner's console in a real browser (Debian's chromium through
Playwright) against a live server: a researcher signs up, finds a model whose weights are
embargoed and sees when they open, asks for access, sees "pending", then "approved" once an
admin approved in the API; at the lift time (a stage seconds ahead) the weights flip from
"opens" to "downloadable" on a reload with nobody acting; the shown curl and ``hf download``
commands, run as shown, fetch files whose SHA-256 match. Another researcher sees none of
it, a hidden model is the ordinary 404 and the partner page does not exist for them; a
partner's person rotates the secret and the old one works for the grace period only. Every
page: an axe-core scan, a screenshot, and a 360 px wide screenshot with nothing cut off."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.console.conftest import Watch, screenshot, serious_violations, sign_in
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import VENV_BIN, LiveServer, create_user, live_server, publish_over_http

pytestmark = pytest.mark.slow

MODEL = "acme/atlas-7b"
HIDDEN = "acme/hidden"
PARIS = ZoneInfo("Europe/Paris")
FILES = {
    "config.json": ("config", b'{"architectures": ["Atlas"]}'),
    "model-00001-of-00001.safetensors": ("weights", os.urandom(64 * 1024 + 5)),
    "tokenizer/tokenizer.json": ("weights", b'{"model": {}}'),
}
# How far ahead the weights open to approved researchers: enough for the steps before the
# approval to run on a slow, shared machine, short enough to wait for.
LIFT_AFTER = timedelta(seconds=60)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def shown_time(at: datetime) -> str:
    """How the console shows an instant to a viewer in Paris: local time, then UTC."""
    local = at.astimezone(PARIS)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"


@dataclass
class World:
    server: LiveServer
    admin_key: str
    lift: datetime

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("researcher-console")
    with fresh_database(tmp, label="researcher") as db_url:
        env = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",  # lifts need no background job
            "WEIGHTGATE_OPEN_REGISTRATION": "true",
        }
        with live_server(env, tmp=tmp) as server:
            admin = create_user(server, "admin@example.org", "admin")
            now = datetime.now(UTC).replace(microsecond=0)
            lift = now + LIFT_AFTER
            past = iso(now - timedelta(days=1))
            publish_over_http(
                server.url,
                admin,
                MODEL,
                components={
                    "config": [("open", past)],
                    "weights": [
                        ("partner", past),
                        ("research", iso(lift)),
                        ("open", iso(now + timedelta(days=30))),
                    ],
                },
                files=FILES,
            )
            publish_over_http(
                server.url,
                admin,
                HIDDEN,
                components={"weights": [("open", iso(now + timedelta(days=3)))]},
                files={"w.bin": ("weights", b"w")},
            )
            world = World(server, admin, lift)
            with world.api() as c:
                c.patch(
                    f"/v1/models/{MODEL}",
                    json={
                        "display_name": "Atlas 7B",
                        "description": "A small <em>test</em> model.",
                        "license": "Atlas license v1.\nUse it for research; do not redistribute.",
                        "request_fields": [
                            {"name": "affiliation", "type": "text", "required": True}
                        ],
                    },
                ).raise_for_status()
            yield world


def check_page(page: Page, name: str) -> None:
    """axe-core finds nothing serious; screenshots at desktop width and at 360 px, where
    the page must not scroll sideways (wide tables and commands scroll in their own box)."""
    assert serious_violations(page) == [], name
    screenshot(page, f"researcher-{name}")
    size = page.viewport_size
    page.set_viewport_size({"width": 360, "height": 780})
    width = page.evaluate("document.documentElement.scrollWidth")
    screenshot(page, f"researcher-{name}-360px")
    assert width <= 360, f"{name} is {width}px wide at 360px"
    if size:
        page.set_viewport_size(size)


def state_of(page: Page, component: str) -> str:
    return page.locator(f"#c-{component} td[data-state]").get_attribute("data-state") or ""


def run_block(block: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_files(folder: Path, paths: list[str]) -> None:
    for path in paths:
        expected = hashlib.sha256(FILES[path][1]).hexdigest()
        assert hashlib.sha256((folder / path).read_bytes()).hexdigest() == expected, path


def test_researcher_signs_up_asks_waits_for_the_lift_and_downloads(
    world: World, page: Page, watch: Watch, tmp_path: Path
) -> None:
    page.goto(world.url + "/console/sign-in")
    page.get_by_role("link", name="Sign up as a researcher").click()
    check_page(page, "sign-up")
    page.get_by_label("Email").fill("ada@uni.example")
    page.get_by_label("Name").fill("Ada")
    page.get_by_role("button", name="Create account").click()
    api_key = page.locator("#new-key").inner_text().strip()
    assert api_key.startswith("wg_")
    check_page(page, "sign-up-done")

    page.get_by_role("link", name="Go to the catalogue").click()
    page.get_by_label("Search models").fill("atlas")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=MODEL)).to_be_visible()
    expect(page.get_by_role("link", name=HIDDEN)).to_have_count(0)
    check_page(page, "catalogue")

    page.get_by_role("link", name=MODEL).click()
    weights = page.locator("#c-weights")
    expect(weights).to_contain_text("needs an access grant")
    # The date the weights open to approved researchers, in the viewer's zone and UTC.
    expect(weights).to_contain_text(f"opens to approved researchers on {shown_time(world.lift)}")
    assert state_of(page, "config") == "downloadable"
    expect(page.locator("main")).to_contain_text("A small <em>test</em> model.")
    check_page(page, "model")

    page.get_by_role("link", name="Request access").click()
    expect(page.locator("pre.license")).to_contain_text("do not redistribute")
    check_page(page, "request-access")
    page.get_by_label("Affiliation (required)").fill("University of Somewhere")
    page.get_by_label("I have read and accept this license").check()
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("#my-request").locator("..")).to_contain_text("pending")

    with world.api() as admin:
        pending = admin.get("/v1/access-requests", params={"status": "pending"}).json()["items"]
        assert [r["user"]["email"] for r in pending] == ["ada@uni.example"]
        assert pending[0]["answers"] == {"affiliation": "University of Somewhere"}
        admin.post(f"/v1/access-requests/{pending[0]['id']}/approve").raise_for_status()

    page.reload()
    expect(page.locator("main")).to_contain_text("approved")
    assert datetime.now(UTC) < world.lift, "the steps before the lift took too long"
    assert state_of(page, "weights") == "opens"
    expect(page.locator("#c-weights")).to_contain_text(f"opens to you on {shown_time(world.lift)}")

    page.get_by_role("link", name="My access").click()
    grant = page.locator("article.grant")
    expect(grant).to_contain_text("active")
    expect(grant.locator("td[data-state=opens]")).to_contain_text(shown_time(world.lift))
    check_page(page, "my-access")

    # The lift: nobody acts; a reload shows the weights downloadable, never before the time.
    page.get_by_role("link", name=MODEL).first.click()
    deadline = world.lift + timedelta(seconds=30)
    while state_of(page, "weights") != "downloadable":
        assert datetime.now(UTC) < deadline, "the weights did not open at the lift time"
        time.sleep(0.5)
        page.reload()
    assert datetime.now(UTC) >= world.lift
    expect(page.locator("#c-weights")).to_contain_text("downloadable now")

    page.get_by_role("link", name="Download…").click()
    check_page(page, "download")
    page.get_by_role("button", name="Create a download token").click()
    token = page.locator("#token-value").inner_text().strip()
    assert token.count(".") == 2  # a JWT
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name=re.compile("^(Copied|Selected)")).first).to_be_visible()
    check_page(page, "download-token")
    curl = page.locator("#cmd-curl").inner_text()
    hf = page.locator("#cmd-hf").inner_text()
    assert token in curl
    assert api_key not in page.content()  # the key is only ever in $WEIGHTGATE_TOKEN

    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "WEIGHTGATE_TOKEN": api_key,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    every = sorted(FILES)
    # Each component also ships its signature file (#22), checked by sha256sum like the rest.
    signatures = sorted({f"signatures/{component}.sig" for component, _ in FILES.values()})
    for name, block in (("curl", curl), ("hf", hf)):
        out = run_block(block, tmp_path / name, env)
        assert out.returncode == 0, f"{name}:\n{block}\n{out.stdout}\n{out.stderr}"
        checked = sorted(re.findall(r"^(.+): OK$", out.stdout, re.M))
        assert checked == sorted(every + signatures)
        assert_files(tmp_path / name / "atlas-7b", every)

    page.get_by_role("navigation").get_by_role("link", name="My keys").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_contain_text("wg_")
    check_page(page, "keys")
    assert watch.dialogs == []
    assert watch.errors == []


def test_another_researcher_sees_none_of_it(world: World, browser: Browser) -> None:
    key = create_user(world.server, "bob@uni.example")
    context = browser.new_context(timezone_id="Europe/Paris", locale="en-GB")
    page = context.new_page()
    try:
        sign_in(page, world.url, key)
        page.goto(world.url + "/console/access")
        expect(page.locator("main")).to_contain_text("You hold no grant yet")
        expect(page.locator("main")).to_contain_text("No request yet.")
        expect(page.locator("main")).not_to_contain_text("ada@uni.example")
        page.goto(world.url + "/console/keys")
        expect(page.locator("tbody tr")).to_have_count(1)  # their own first key only
        expect(page.locator("main")).not_to_contain_text("laptop")
        page.goto(world.url + "/console/catalogue")
        expect(page.get_by_role("link", name=HIDDEN)).to_have_count(0)
        expect(page.get_by_role("link", name="Partner")).to_have_count(0)
        missing = page.goto(world.url + "/console/no-such-page")
        assert missing is not None
        assert missing.status == 404
        plain_404 = page.locator("main").inner_html()
        for path in (
            f"/console/catalogue/{HIDDEN}",
            "/console/catalogue/acme/ghost",
            "/console/partner",
        ):
            resp = page.goto(world.url + path)
            assert resp is not None
            assert resp.status == 404, path
            assert page.locator("main").inner_html() == plain_404, path
        page.goto(world.url + f"/console/catalogue/{MODEL}")
        expect(page.locator("#my-request").locator("..")).not_to_contain_text("pending")
        expect(page.locator("#my-request").locator("..")).not_to_contain_text("approved")
    finally:
        context.close()


def _oauth(url: str, client_id: str, secret: str) -> int:
    resp = httpx.post(
        url + "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    )
    return resp.status_code


def test_partner_person_rotates_the_secret_with_a_grace_period(
    world: World, browser: Browser
) -> None:
    with world.api() as admin:
        partner = admin.post("/v1/partners", json={"name": "Lab A", "models": [MODEL]}).json()
        key = create_user(world.server, "ops@lab-a.example")
        me = httpx.get(
            world.url + "/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=30
        ).json()
        admin.patch(f"/v1/users/{me['id']}", json={"partner_id": partner["id"]}).raise_for_status()
    old = partner["client_secret"]
    assert _oauth(world.url, partner["client_id"], old) == 200
    context = browser.new_context(timezone_id="Europe/Paris", locale="en-GB")
    page = context.new_page()

    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)
    try:
        sign_in(page, world.url, key)
        page.get_by_role("link", name="Partner").click()
        expect(page.locator("main")).to_contain_text(partner["client_id"])
        expect(page.locator("main")).to_contain_text("oauth.token_issued")
        check_page(page, "partner")
        grace = 6
        page.get_by_label("Amount").fill(str(grace))
        page.get_by_label("Unit").select_option("seconds")
        page.get_by_role("button", name="Rotate secret").click()
        rotated_at = datetime.now(UTC)
        new = page.locator("#new-secret").inner_text().strip()
        assert new.startswith("wgp_")
        assert new != old
        expect(page.locator("main")).to_contain_text("keeps working until")
        check_page(page, "partner-rotated")
        # Within the grace period both work; after it, the old one only fails.
        assert _oauth(world.url, partner["client_id"], old) == 200
        assert _oauth(world.url, partner["client_id"], new) == 200
        deadline = rotated_at + timedelta(seconds=grace + 20)
        while _oauth(world.url, partner["client_id"], old) == 200:
            assert datetime.now(UTC) < deadline, "the old secret outlived its grace period"
            time.sleep(0.5)
        # The server's rotation happened before rotated_at: the old secret stopped no
        # earlier than grace seconds after it (less a second for the page round trip).
        assert datetime.now(UTC) >= rotated_at + timedelta(seconds=grace - 1)
        assert _oauth(world.url, partner["client_id"], new) == 200
    finally:
        context.close()
