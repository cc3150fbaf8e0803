"""The image's lock files, made from pyproject.toml and checked against it.

Two locks with a SHA-256 for every distribution, so ``pip install --require-hashes`` in the
Dockerfile installs exactly what was locked:

- ``deploy/requirements.lock``: ``[project] dependencies`` and everything they pull in;
- ``deploy/build-requirements.lock``: pip and ``[build-system] requires`` (setuptools,
  wheel), the tools that build the wheel inside the image.

``python deploy/lockfile.py update`` (``make lock``) writes them with ``uv pip compile``,
keeping the versions already locked unless ``--upgrade`` is given. ``check`` (``make lint``)
needs no network: each lock records a fingerprint of the requirements it was made from, so
an edit to pyproject.toml that is not followed by ``make lock`` fails; and every requirement
of pyproject.toml must be pinned in its lock at a version it allows, with hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# The interpreter of the image (the Dockerfile's default base image).
PYTHON_VERSION = "3.11"
FINGERPRINT = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})$", re.MULTILINE)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+?))?\s*$")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Lock:
    """One lock file and the requirements of pyproject.toml it is made from."""

    path: Path
    inputs: tuple[str, ...]

    def fingerprint(self) -> str:
        canonical = sorted(str(Requirement(r)) for r in self.inputs)
        payload = json.dumps({"python": PYTHON_VERSION, "requirements": canonical})
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: int


def locks(root: Path = ROOT) -> list[Lock]:
    project = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))
    build = tuple(project["build-system"]["requires"])
    return [
        Lock(root / "deploy" / "requirements.lock", tuple(project["project"]["dependencies"])),
        Lock(root / "deploy" / "build-requirements.lock", ("pip", *build)),
    ]


def pins(text: str) -> list[Pin]:
    """The ``name==version`` entries of a hashed requirements file."""
    logical = re.sub(r"\\\n", " ", text)
    found = []
    for line in logical.splitlines():
        entry = line.split(" #", 1)[0].strip()
        if not entry or entry.startswith("#"):
            continue
        requirement = entry.partition(" --")[0]
        match = _PIN.match(requirement.strip())
        if match is None:
            raise ValueError(f"not an exact pin: {requirement.strip()!r}")
        name, version, marker = match.groups()
        found.append(Pin(canonicalize_name(name), version, marker, len(_HASH.findall(entry))))
    return found


def problems(lock: Lock) -> list[str]:
    """What is wrong with one lock file, as sentences (empty: nothing)."""
    name = lock.path.relative_to(lock.path.parents[1])
    if not lock.path.is_file():
        return [f"{name} is missing: run `make lock`"]
    text = lock.path.read_text("utf-8")
    recorded = FINGERPRINT.search(text)
    if recorded is None or recorded.group(1) != lock.fingerprint():
        return [f"{name} was not made from pyproject.toml as it is now: run `make lock`"]
    try:
        locked = pins(text)
    except ValueError as e:
        return [f"{name}: {e}"]
    found = [f"{name}: {p.name}=={p.version} has no --hash" for p in locked if not p.hashes]
    for raw in lock.inputs:
        wanted = Requirement(raw)
        candidates = [p for p in locked if p.name == canonicalize_name(wanted.name)]
        if not candidates:
            found.append(f"{name}: {wanted.name} (from pyproject.toml) is not locked")
        for pin in candidates:
            if not wanted.specifier.contains(Version(pin.version), prereleases=True):
                found.append(f"{name}: {pin.name}=={pin.version} is outside {wanted}")
    return found


def update(lock: Lock, *, upgrade: bool) -> None:
    """Write ``lock`` with uv, then record the fingerprint of its inputs at its top."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "requirements.in"
        source.write_text("\n".join(lock.inputs) + "\n", "utf-8")
        command = [
            "uv", "pip", "compile", str(source),
            "--generate-hashes", "--universal", "--python-version", PYTHON_VERSION,
            "--no-header", "--quiet", "--output-file", str(lock.path),
        ]  # fmt: skip
        if upgrade:
            command.append("--upgrade")
        subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603 (fixed argv, our files)
    body = lock.path.read_text("utf-8")
    body = re.sub(r"(?m)^\s+# via\s+.*requirements\.in\n", "", body)
    body = body.replace(f"{source}", "pyproject.toml")
    header = (
        f"# Made by `make lock` (deploy/lockfile.py) from pyproject.toml; do not edit.\n"
        f"# inputs-sha256: {lock.fingerprint()}\n"
    )
    lock.path.write_text(header + body, "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "update"])
    parser.add_argument("--upgrade", action="store_true", help="update: newest allowed versions")
    args = parser.parse_args(argv)
    if args.command == "update":
        for lock in locks():
            update(lock, upgrade=args.upgrade)
    found = [p for lock in locks() for p in problems(lock)]
    for problem in found:
        print(f"lockfile: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
