"""Browser tests of the console: a live server and one chromium per test module (both take
seconds to start), a fresh browser context per test. Debian's chromium is driven through
Playwright; Playwright's own browser download is never used (it cannot be reached here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright

from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import ROOT, LiveServer, create_user, live_server

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "var" / "test-reports" / "console"


@dataclass
class Console:
    """A live server with an admin, and what the browser tests need to drive it."""

    server: LiveServer
    admin_key: str
    users: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def user(self, email: str, role: str = "researcher") -> str:
        """An API key for ``email``, made once per module with the operator's command."""
        if email not in self.users:
            self.users[email] = create_user(self.server, email, role)
        return self.users[email]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    with fresh_database(tmp, label="console") as url:
        env = {"WEIGHTGATE_DATABASE_URL": url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}
        with live_server(env, tmp=tmp) as server:
            yield Console(server, create_user(server, "admin@example.org", "admin"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where chromium refuses its sandbox.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What a page did that a test must notice: dialogs opened (an executed alert()), and
    console errors (a Content-Security-Policy violation is one)."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(timezone_id="Europe/Paris", locale="en-GB")
    context.set_default_timeout(15_000)
    tab = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.errors.append(message.text)

    tab.on("dialog", on_dialog)
    tab.on("console", on_console)
    yield tab
    context.close()


def sign_in(page: Page, url: str, api_key: str) -> None:
    page.goto(url + "/console/sign-in")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console/(?!sign-in).*"))


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under var/test-reports/console/ for a reviewer to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical accessibility violations on the page."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
