""".ci/run must fail when the PostgreSQL pass did not really run: its report check, run
against reports made up for each way that can happen."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parents[2]


def report_check() -> str:
    """The Python program .ci/run feeds to the interpreter after `make test`."""
    script = (ROOT / ".ci" / "run").read_text("utf-8")
    match = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.DOTALL)
    assert match, ".ci/run no longer checks the test reports"
    assert script.index("make test") < match.start(), "reports are checked after make test"
    assert 'rm -rf "$reports"' in script, "stale reports are removed before the run"
    return match.group(1)


DEPLOY = ("tests.deploy.test_compose_stack", "test_the_stack_through_its_load_balancer")


def junit(
    name: str,
    *,
    tests: int,
    skipped: int = 0,
    failures: int = 0,
    deploy: str | None = "passed",
) -> str:
    """A report as pytest writes it; ``deploy`` is how the deploy test went, or None when
    it was not collected (deselected)."""
    outcome = {"passed": "", "failed": "<failure message='x' />", "skipped": "<skipped />"}
    case = (
        f'<testcase classname="{DEPLOY[0]}" name="{DEPLOY[1]}" time="90">{outcome[deploy]}'
        "</testcase>"
        if deploy is not None
        else ""
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
        f'<testsuite name="{name}" errors="0" failures="{failures}" skipped="{skipped}" '
        f'tests="{tests}" time="1.0">{case}</testsuite></testsuites>'
    )


def run_check(tmp_path: Path, reports: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for backend, xml in reports.items():
        (tmp_path / f"{backend}.xml").write_text(xml)
    return subprocess.run(
        [sys.executable, "-", str(tmp_path)],
        input=report_check(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_both_passes_with_tests_pass(tmp_path: Path) -> None:
    result = run_check(
        tmp_path,
        {
            "sqlite": junit("sqlite", tests=900, deploy=None),
            "postgresql": junit("postgresql", tests=900),
        },
    )
    assert result.returncode == 0, result.stderr
    assert ".ci/run: postgresql: 900 tests, 0 skipped, 0 failed" in result.stdout


@pytest.mark.parametrize(
    ("postgresql", "why"),
    [
        (None, "no test report for postgresql"),
        (junit("postgresql", tests=0), "must run tests and skip none"),
        (junit("postgresql", tests=900, skipped=3), "must run tests and skip none"),
        (junit("postgresql", tests=900, failures=1), "must run tests and skip none"),
        (junit("sqlite", tests=900), "report is from another pass"),
        (junit("postgresql", tests=900, deploy=None), "test_compose_stack"),
        (junit("postgresql", tests=900, deploy="failed"), "did not run and pass"),
    ],
)
def test_a_postgresql_pass_that_did_not_really_run_fails_ci(
    tmp_path: Path, postgresql: str | None, why: str
) -> None:
    reports = {"sqlite": junit("sqlite", tests=900, deploy=None)}
    if postgresql is not None:
        reports["postgresql"] = postgresql
    result = run_check(tmp_path, reports)
    assert result.returncode == 1
    assert why in result.stderr


def test_makefile_writes_the_reports_ci_checks() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    for backend in ("sqlite", "postgresql"):
        assert f"--junitxml=$(REPORTS)/{backend}.xml -o junit_suite_name={backend}" in makefile
    assert "REPORTS := var/test-reports" in makefile
    assert re.search(r"^test: lint test-sqlite test-postgres\b", makefile, re.MULTILINE)


def test_ci_installs_and_starts_a_docker_engine_before_the_suite() -> None:
    """The deploy test runs in CI: .ci/run installs Debian's engine and debootstrap when
    missing and starts dockerd before `make test`, and fails if it does not answer."""
    script = (ROOT / ".ci" / "run").read_text("utf-8")
    install = script.index("apt-get install -y -qq docker.io debootstrap")
    start = script.index("nohup dockerd")
    assert install < start < script.index("\nmake test\n")
    assert 'docker_up || { echo "Docker did not start' in script
