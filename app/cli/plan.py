"""What ``weightgate download`` / ``ls`` will do: the release's manifest as the caller sees it,
narrowed to the components and globs asked for, and what stays closed (and until when)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from app.cli.errors import AuthError, CliError, EmbargoError, NotFoundError, parse_time
from app.cli.http import ApiClient


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    version: str | None  # None: the latest published release

    @property
    def model(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, spec: str) -> Target:
        model, at, version = spec.partition("@")
        namespace, _, name = model.partition("/")
        if not namespace or not name or "/" in name or (at and not version):
            raise CliError(
                f"expected namespace/name[@version], got {spec!r}", code="bad_model_spec"
            )
        return cls(namespace, name, version or None)


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str
    component: str


@dataclass(frozen=True)
class ClosedComponent:
    name: str
    tier: str
    opens_to_you_at: datetime | None
    held: bool
    grant_would_open: bool  # open to approved researchers now; the caller has no grant

    def explain(self, model: str) -> str:
        if self.grant_would_open:
            when = (
                f"; without a grant it opens to you at {self.opens_to_you_at.isoformat()}"
                if self.opens_to_you_at
                else ""
            )
            return (
                f"component {self.name} ({self.tier}) needs an approved access request: "
                f"weightgate request-access {model}{when}"
            )
        if self.opens_to_you_at is not None:
            return (
                f"component {self.name} ({self.tier}) is under embargo; "
                f"it opens to you at {self.opens_to_you_at.isoformat()}"
            )
        why = "its schedule is on hold" if self.held else "nothing scheduled opens it to you"
        return f"component {self.name} ({self.tier}) is not open to you: {why}"


@dataclass(frozen=True)
class Plan:
    model: str
    version: str
    revision: str
    clearance: str
    files: list[RemoteFile]
    closed: list[ClosedComponent]  # among the components asked for (or all, if none were)
    components: list[dict[str, Any]]  # the manifest's component list, for `ls`

    def file_url(self, path: str) -> str:
        return f"/v1/files/{self.model}/{quote(self.version, safe='')}/{quote(path, safe='/')}"

    def refusal(self, *, explicit: bool) -> CliError | None:
        """The error to end with when something asked for stays closed (``explicit``: the
        components were named on the command line), or when nothing at all is open."""
        if not self.closed or (self.files and not explicit):
            return None
        message = "; ".join(c.explain(self.model) for c in self.closed)
        if all(c.grant_would_open for c in self.closed):
            return AuthError(message, code="access_grant_required")
        dates = [c.opens_to_you_at for c in self.closed if c.opens_to_you_at]
        if not dates:
            # The server's code for "nothing scheduled opens it to you" (app/policy/decision.py).
            return EmbargoError(message, until=None, code="not_open_to_you")
        return EmbargoError(message, until=min(dates), code="embargoed")


def manifest_path(target: Target) -> str:
    version = quote(target.version or "main", safe="")
    return f"/v1/models/{target.namespace}/{target.name}/releases/{version}/manifest"


def fetch_plan(
    api: ApiClient,
    target: Target,
    *,
    components: list[str] | None = None,
    includes: list[str] | None = None,
) -> Plan:
    manifest = api.get(manifest_path(target), what=f"reading the manifest of {target.model}")
    by_name = {c["name"]: c for c in manifest["components"]}
    if components:
        unknown = sorted(set(components) - set(by_name))
        if unknown:
            raise NotFoundError(
                f"{target.model}@{manifest['version']} has no component {unknown[0]!r} "
                f"(components: {', '.join(sorted(by_name)) or 'none you may see'})",
                code="component_not_found",
            )
    wanted = set(components) if components else set(by_name)
    files = [
        RemoteFile(f["path"], int(f["size"]), f["sha256"], f["component"])
        for f in manifest["files"]
        if f["component"] in wanted
        and (not includes or any(fnmatch.fnmatchcase(f["path"], g) for g in includes))
    ]
    clearance = str(manifest.get("clearance") or "open")
    closed = [
        ClosedComponent(
            name=c["name"],
            tier=c["tier"],
            opens_to_you_at=parse_time(c.get("opens_to_you_at")),
            held=bool(c.get("held")),
            # The server says why (its "code"); an older server did not, and the CLI guesses.
            grant_would_open=c["code"] == "access_grant_required"
            if "code" in c
            else clearance == "open" and c["tier"] == "research",
        )
        for c in sorted(manifest["components"], key=lambda c: c["name"])
        if c["name"] in wanted and not c["downloadable"]
    ]
    return Plan(
        model=manifest["model"],
        version=manifest["version"],
        revision=manifest["revision"] or "",
        clearance=clearance,
        files=sorted(files, key=lambda f: f.path),
        closed=closed,
        components=manifest["components"],
    )
