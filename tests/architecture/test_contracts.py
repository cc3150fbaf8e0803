"""The import contracts of pyproject.toml ([tool.importlinter], run by ``make lint``) hold on
the code, and break on planted violations: a package cycle, a router importing a repository,
the policy importing the database. Also here: no router opens a database session itself.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"

# A planted import per contract: (file under app/, line appended, the contract that must
# break, and how its report names the planted import).
PLANTS = [
    (
        "catalogue/names.py",
        "import app.schedule.embargoes",  # schedule already imports catalogue
        "No two packages of app",
        ".catalogue -> .schedule",
    ),
    (
        "tokens/router.py",
        "from app.tokens import repository as planted",
        "No router imports",
        "app.tokens.router -> app.tokens.repository",
    ),
    (
        "policy/tiers.py",
        "import sqlalchemy",
        "The policy is a leaf",
        "app.policy.tiers -> sqlalchemy",
    ),
    (
        "policy/clearance.py",
        "import app.models",
        "Packages: the app",
        "app.policy.clearance -> app.models",
    ),
]


def lint_imports(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(CONFIG), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(source_root), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_contracts_hold(tmp_path: Path) -> None:
    run = lint_imports(ROOT, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BROKEN" not in run.stdout
    assert "Contracts: 6 kept, 0 broken." in run.stdout


def test_planted_violations_break_their_contracts(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    for relative, line, _, _ in PLANTS:
        target = tmp_path / "app" / relative
        target.write_text(target.read_text() + f"\n{line}  # planted\n")
    run = lint_imports(tmp_path, tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    report = " ".join(run.stdout.split())  # the report wraps long names across lines
    for _, _, contract, named in PLANTS:
        assert f"{contract}" in report
        assert named in report, (named, run.stdout)
    assert "Contracts: 2 kept, 4 broken." in report


def _routers(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.py") if p.stem.endswith("router"))


# What opening or ending a transaction looks like: the session factory (``parts.sessionmaker``
# or sqlalchemy's), a ``Session(...)`` made by hand, ``.commit()`` or ``.rollback()``.
_SESSION_ATTRIBUTES = {"sessionmaker", "commit", "rollback"}
_SESSION_NAMES = {"sessionmaker", "Session"}


def routers_opening_sessions(root: Path) -> set[str]:
    """The routers under ``root`` (an ``app`` directory) that touch a session factory, make a
    session or commit or roll one back."""
    found = set()
    for path in _routers(root):
        for node in ast.walk(ast.parse(path.read_text())):
            opens = (isinstance(node, ast.Attribute) and node.attr in _SESSION_ATTRIBUTES) or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in _SESSION_NAMES
            )
            if opens:
                found.add(str(path.relative_to(root)))
    return found


def test_no_router_opens_or_commits_a_session() -> None:
    """Routers take the request's session (``SessionDep``, committed by ``get_session``);
    opening one from the sessionmaker, or committing, is the service's or db.py's business
    (app/hfcompat/resolution.py says why the Hub's resolve has a transaction of its own)."""
    assert routers_opening_sessions(ROOT / "app") == set()


def test_a_router_opening_a_session_is_found(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    planted = {
        "tokens/router.py": "\ndef planted(parts):\n    return parts.sessionmaker()\n",
        "audit/router.py": "\ndef planted(session):\n    session.commit()\n",
        "webhooks/router.py": "\ndef planted(engine):\n    return Session(engine)\n",
    }
    for relative, code in planted.items():
        target = tmp_path / "app" / relative
        target.write_text(target.read_text() + code)
    assert routers_opening_sessions(tmp_path / "app") == set(planted)


def _type_only_imports(tree: ast.Module) -> set[str]:
    """The app modules a module imports under ``if TYPE_CHECKING:``."""
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("app"):
                    found.add(inner.module or "")
                elif isinstance(inner, ast.Import):
                    found.update(a.name for a in inner.names if a.name.startswith("app"))
    return found


def test_only_the_parts_import_app_modules_for_the_type_checker_alone() -> None:
    """The contracts check the imports that run (``exclude_type_checking_imports``), so that
    app/parts.py can name the domains' types of its fields from below them. Anywhere else a
    type-only import would hide a dependency from the contracts."""
    hiding = {
        str(path.relative_to(ROOT / "app"))
        for path in (ROOT / "app").rglob("*.py")
        if _type_only_imports(ast.parse(path.read_text()))
    }
    assert hiding == {"parts.py"}
