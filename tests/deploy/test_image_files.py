"""The Dockerfile, .dockerignore and the lock files, read as text: what the image build
relies on without building it (tests/deploy/test_compose_stack.py builds and runs it)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from deploy import lockfile

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_text() -> str:
    return (ROOT / "Dockerfile").read_text("utf-8")


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in dockerfile_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    out = []
    for entry in logical:
        word, _, rest = entry.partition(" ")
        out.append((word.upper(), re.sub(r"\s+", " ", rest.strip())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instr in dockerfile():
        if instr[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instr)
    return result


def runs(stage: list[tuple[str, str]]) -> str:
    return " && ".join(args for instr, args in stage if instr == "RUN")


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def test_no_syntax_line_so_the_classic_builder_and_buildkit_need_no_frontend_image() -> None:
    assert not re.search(r"(?im)^#\s*syntax\s*=", dockerfile_text())


def test_the_base_image_is_a_build_argument_of_a_supported_python() -> None:
    args = dict(a.split("=", 1) for i, a in dockerfile() if i == "ARG" and "=" in a)
    base = args["BASE_IMAGE"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim-[a-z]+", base)
    assert match, f"default base {base!r}: the official slim image of one Python"
    version = (int(match.group(1)), int(match.group(2)))
    minimum = pyproject()["project"]["requires-python"].removeprefix(">=")
    assert version >= tuple(map(int, minimum.split(".")))
    # The locks are resolved for the image's Python, and the tests run on it too.
    assert f"{version[0]}.{version[1]}" == lockfile.PYTHON_VERSION
    assert version == sys.version_info[:2]
    froms = [s[0][1] for s in stages()]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE} AS runtime"]


def test_dependencies_come_from_the_locks_with_hashes_and_only_as_wheels() -> None:
    build = runs(stages()[0])
    assert "pip install --require-hashes --no-deps -r deploy/build-requirements.lock" in build
    assert re.search(
        r"install --require-hashes --no-deps --only-binary :all: -r deploy/requirements\.lock",
        build,
    )
    # The application itself: a wheel of the copied sources with the pinned build tools,
    # installed without dependencies (everything came from the lock), then `pip check`.
    assert "pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist /src" in build
    assert re.search(r"install --no-deps --no-index /tmp/dist/weightgate-\*\.whl", build)
    assert "pip --python /opt/weightgate/bin/python check" in build
    assert "python3 -m venv --without-pip /opt/weightgate" in build
    copied = " ".join(args for instr, args in stages()[0] if instr == "COPY")
    project = pyproject()
    assert "pyproject.toml" in copied
    assert project["project"]["readme"] in copied
    for include in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert re.search(rf"\b{include.rstrip('*')}\b", copied), include
    assert project["project"]["scripts"]["weightgate"] == "app.cli.main:main"


def test_the_runtime_stage_ships_the_environment_without_packaging_tools() -> None:
    final = stages()[-1]
    copies = [args for instr, args in final if instr == "COPY"]
    assert copies == [
        "deploy/image/remove-packaging-tools.py /tmp/",
        "--from=build /opt/weightgate /opt/weightgate",
    ]
    assert runs(final).startswith("python3 /tmp/remove-packaging-tools.py && rm ")


def test_the_runtime_stage_runs_unprivileged_with_a_health_check_and_sigterm() -> None:
    final = stages()[-1]
    user = [args for instr, args in final if instr == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    (health,) = [args for instr, args in final if instr == "HEALTHCHECK"]
    assert "/healthz" in health
    assert [args for instr, args in final if instr == "STOPSIGNAL"] == ["SIGTERM"]
    cmd = [args for instr, args in final if instr == "CMD"][-1]
    # `serve` migrates first unless told --no-migrate: the image alone migrates, then serves.
    assert cmd.startswith('["weightgate", "serve"')
    assert "--no-migrate" not in cmd
    env = " ".join(args for instr, args in final if instr == "ENV")
    assert "WEIGHTGATE_ENVIRONMENT=production" in env


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources = {
        src
        for instr, args in dockerfile()
        if instr == "COPY" and not args.startswith("--from")
        for src in args.split()[:-1]
    }
    assert allowed == {"pyproject.toml", "README.md", "app", "migrations", "deploy/image"} | {
        s for s in sources if s.endswith(".lock")
    }
    for name in allowed:
        assert (ROOT / name).exists(), name


# ------------------------------------------------------------------------------ the lock


def test_the_locks_match_pyproject() -> None:
    """What `make lint` runs (deploy/lockfile.py check)."""
    assert lockfile.main(["check"]) == 0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of pyproject.toml and the locks to break."""
    (tmp_path / "deploy").mkdir()
    for name in ("pyproject.toml", "deploy/requirements.lock", "deploy/build-requirements.lock"):
        (tmp_path / name).write_text((ROOT / name).read_text("utf-8"), "utf-8")
    return tmp_path


def problems(root: Path) -> list[str]:
    return [p for lock in lockfile.locks(root) for p in lockfile.problems(lock)]


def test_a_dependency_added_to_pyproject_without_relocking_fails(project: Path) -> None:
    text = (project / "pyproject.toml").read_text("utf-8")
    (project / "pyproject.toml").write_text(
        text.replace("dependencies = [\n", 'dependencies = [\n    "humanize>=4",\n', 1)
    )
    assert problems(project) == [
        "deploy/requirements.lock was not made from pyproject.toml as it is now: run `make lock`"
    ]


def test_a_pin_without_hashes_or_outside_the_range_fails(project: Path) -> None:
    lock = project / "deploy" / "requirements.lock"
    text = lock.read_text("utf-8")
    fastapi = re.search(r"(?m)^fastapi==(\S+) \\\n(    --hash=\S+(?: \\)?\n)+", text)
    assert fastapi
    lock.write_text(text.replace(fastapi.group(0), "fastapi==0.100.0\n"))
    found = problems(project)
    assert "deploy/requirements.lock: fastapi==0.100.0 has no --hash" in found
    assert any(p.startswith("deploy/requirements.lock: fastapi==0.100.0 is outside") for p in found)


def test_build_tools_are_locked_too(project: Path) -> None:
    names = {p.name for p in lockfile.pins((ROOT / "deploy/build-requirements.lock").read_text())}
    assert {"pip", "setuptools", "wheel"} <= names
    lock = project / "deploy" / "build-requirements.lock"
    lock.write_text(re.sub(r"(?m)^setuptools==.*\n(    .*\n)*", "", lock.read_text("utf-8")))
    assert "deploy/build-requirements.lock: setuptools (from pyproject.toml) is not locked" in (
        problems(project)
    )
