"""What ``weightgate publish`` will do, worked out locally before any request is sent: which
file of the folder goes to which component, and each component's schedule.

Client-side only: nothing here imports the server (``app.when``, which reads the times,
is a standard-library leaf shared with it), so the rules the server enforces (name syntax,
schedule order) are checked again there; this module only catches what it can before
uploading gigabytes.
"""

from __future__ import annotations

import fnmatch
import os
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from app.when import WhenError, format_utc, parse_offset, resolve

# The tier ladder, most restricted first (the server's app.policy.tiers; repeated here
# because the client never imports server modules).
TIERS = ("internal", "partner", "research", "open")


class PlanError(Exception):
    """The command line or the folder does not describe a release (exit code 2)."""


@dataclass(frozen=True)
class Stage:
    tier: str
    at: datetime
    typed: str = ""  # the offset as typed ('+2h'), empty for an absolute time

    def as_json(self) -> dict[str, str]:
        return {"tier": self.tier, "at": format_utc(self.at)}

    def describe(self) -> str:
        when = format_utc(self.at)
        return f"{self.tier} at {when} ({self.typed})" if self.typed else f"{self.tier} at {when}"


@dataclass
class ComponentSpec:
    name: str
    patterns: list[str] = field(default_factory=list)
    schedule: list[Stage] = field(default_factory=list)


@dataclass(frozen=True)
class LocalFile:
    path: str  # the path inside the release: relative, '/'-separated, NFC
    source: Path  # where the bytes are on this machine
    size: int
    component: str


@dataclass(frozen=True)
class Plan:
    components: list[ComponentSpec]
    files: list[LocalFile]
    skipped_hidden: int

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def parse_components(values: list[str]) -> list[ComponentSpec]:
    """``NAME=PATTERN`` options, in order; repeating a name adds patterns to it."""
    specs: dict[str, ComponentSpec] = {}
    for value in values:
        name, sep, pattern = value.partition("=")
        name, pattern = name.strip(), pattern.strip()
        if not sep or not name or not pattern:
            raise PlanError(f"--component {value!r}: expected NAME=PATTERN, e.g. weights='*.bin'")
        specs.setdefault(name, ComponentSpec(name)).patterns.append(pattern)
    if not specs:
        raise PlanError("give at least one --component NAME=PATTERN")
    return list(specs.values())


def parse_stage_time(text: str, *, now: datetime) -> Stage:
    """The ``WHEN`` of a stage (tier filled in by the caller)."""
    try:
        typed = text.strip() if parse_offset(text) is not None else ""
        return Stage("", resolve(text, now=now), typed)
    except WhenError as e:
        raise PlanError(str(e)) from e


def parse_schedules(
    values: list[str], components: list[ComponentSpec], *, now: datetime | None = None
) -> None:
    """Attach ``NAME=TIER@WHEN[,TIER@WHEN...]`` options to their components. A relative
    ``WHEN`` (``+2h``) is counted from ``now``, the moment the command was started."""
    now = now or datetime.now(UTC)
    by_name = {c.name: c for c in components}
    for value in values:
        name, sep, stages = value.partition("=")
        name = name.strip()
        if not sep or not stages.strip():
            raise PlanError(
                f"--schedule {value!r}: expected NAME=TIER@WHEN[,TIER@WHEN...], "
                "e.g. weights=partner@+2h,open@+30d or weights=open@2027-03-01T00:00:00Z"
            )
        if name not in by_name:
            raise PlanError(f"--schedule names component {name!r}, which no --component defines")
        spec = by_name[name]
        if spec.schedule:
            raise PlanError(f"--schedule given twice for component {name!r}")
        for part in stages.split(","):
            tier, at_sep, when = part.strip().partition("@")
            if not at_sep:
                raise PlanError(f"--schedule {name}: stage {part!r} should be TIER@WHEN")
            if tier not in TIERS:
                raise PlanError(
                    f"--schedule {name}: unknown tier {tier!r} (one of {', '.join(TIERS)})"
                )
            spec.schedule.append(replace(parse_stage_time(when, now=now), tier=tier))
        ats = [s.at for s in spec.schedule]
        if ats != sorted(ats) or len(set(ats)) != len(ats):
            raise PlanError(f"--schedule {name}: stages must be in strictly increasing time order")
        ranks = [TIERS.index(s.tier) for s in spec.schedule]
        if ranks != sorted(ranks) or len(set(ranks)) != len(ranks) or ranks[0] == 0:
            raise PlanError(
                f"--schedule {name}: each stage must open further than the one before "
                f"({' < '.join(TIERS)}; components start internal)"
            )


def matches(pattern: str, path: str) -> bool:
    """Like .gitignore: a pattern with a '/' matches the whole relative path, one without
    matches the file name in any directory."""
    if "/" in pattern:
        return fnmatch.fnmatchcase(path, pattern.lstrip("/"))
    return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)


def walk(root: Path, *, include_hidden: bool) -> tuple[list[tuple[str, Path]], int]:
    """Regular files under ``root`` (following symlinked files, not directories) as
    ``(release path, source)``, and how many hidden entries were skipped."""
    found: list[tuple[str, Path]] = []
    skipped = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if not include_hidden:
            skipped += sum(1 for d in dirnames if d.startswith("."))
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        dirnames.sort()
        for name in sorted(filenames):
            if not include_hidden and name.startswith("."):
                skipped += 1
                continue
            source = Path(dirpath) / name
            if not source.is_file():  # sockets, fifos, dangling links
                continue
            rel = source.relative_to(root).as_posix()
            # macOS file systems hand out NFD names; release paths are NFC.
            found.append((unicodedata.normalize("NFC", rel), source))
    return found, skipped


def make_plan(
    root: Path,
    components: list[ComponentSpec],
    *,
    exclude: list[str],
    include_hidden: bool = False,
) -> Plan:
    if not root.is_dir():
        raise PlanError(f"{root} is not a directory")
    found, skipped = walk(root, include_hidden=include_hidden)
    files: list[LocalFile] = []
    unmatched: list[str] = []
    for rel, source in found:
        if any(matches(p, rel) for p in exclude):
            continue
        # The first --component whose pattern matches wins, in the order given.
        owner = next((c.name for c in components if any(matches(p, rel) for p in c.patterns)), None)
        if owner is None:
            unmatched.append(rel)
            continue
        files.append(LocalFile(rel, source, source.stat().st_size, owner))
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (" ..." if len(unmatched) > 10 else "")
        raise PlanError(
            f"{len(unmatched)} file(s) match no --component pattern: {shown}. "
            "Add a --component NAME=PATTERN for them or leave them out with --exclude PATTERN."
        )
    if not files:
        raise PlanError(f"no files to publish in {root}")
    files.sort(key=lambda f: f.path)
    empty = [c.name for c in components if not any(f.component == c.name for f in files)]
    if empty:
        raise PlanError(f"component(s) {', '.join(empty)} match no file in {root}")
    return Plan(components, files, skipped)
