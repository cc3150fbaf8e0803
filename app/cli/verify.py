"""``weightgate verify DIR``: re-check a downloaded tree file by file against the release
manifest (the server's, or with ``offline`` the copy recorded at download time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.cli.errors import CliError
from app.cli.http import ApiClient
from app.cli.localfiles import LocalRecord, file_sha256, local_path
from app.cli.plan import Target, manifest_path


@dataclass
class Expected:
    size: int
    sha256: str
    component: str


@dataclass
class VerifyReport:
    model: str
    version: str
    revision: str
    ok: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    # Downloaded earlier, but not in the manifest as the server shows it to you now (for
    # example a component restricted since): checked against the recorded hash instead.
    unlisted: list[str] = field(default_factory=list)
    # SHA-256 of every local file hashed on the way, for the signature check.
    hashes: dict[str, str] = field(default_factory=dict)
    # The server says the release's signatures were revoked (online check only).
    revoked: str | None = None

    @property
    def good(self) -> bool:
        return not self.missing and not self.mismatched


def expected_files(
    record: LocalRecord, api: ApiClient | None
) -> tuple[dict[str, Expected], list[str], str | None]:
    """What each file should be, the files the server no longer lists, and the server's
    word on a revocation of the release's signatures."""
    recorded = {p: Expected(f.size, f.sha256, f.component) for p, f in record.files.items()}
    if api is None:
        return recorded, [], None
    namespace, name = record.model.split("/", 1)
    manifest = api.get(
        manifest_path(Target(namespace, name, record.revision)),
        what=f"reading the manifest of {record.model}@{record.version}",
    )
    listed = {
        f["path"]: Expected(int(f["size"]), f["sha256"], f["component"])
        for f in manifest["files"]
        if f["path"] in recorded
    }
    unlisted = sorted(set(recorded) - set(listed))
    revoked = next(
        (
            f"revoked at {s['revoked_at']}: {s.get('revoke_reason')}"
            for s in manifest.get("signatures", [])
            if s.get("revoked_at")
        ),
        None,
    )
    return {**recorded, **listed}, unlisted, revoked


def digest_of(report: VerifyReport, rel: str, local: Path) -> str:
    if rel not in report.hashes:
        report.hashes[rel] = file_sha256(local)
    return report.hashes[rel]


def verify_tree(root: Path, *, api: ApiClient | None) -> VerifyReport:
    record = LocalRecord.load(root)
    if record is None:
        raise CliError(
            f"{root} holds no weightgate download (no {LocalRecord.path(root)})",
            code="not_a_download",
        )
    expected, unlisted, revoked = expected_files(record, api)
    report = VerifyReport(
        record.model, record.version, record.revision, unlisted=unlisted, revoked=revoked
    )
    for rel, exp in sorted(expected.items()):
        local = local_path(root, rel)
        if not local.is_file():
            report.missing.append(rel)
        elif local.stat().st_size != exp.size or digest_of(report, rel, local) != exp.sha256:
            report.mismatched.append(rel)
        else:
            report.ok.append(rel)
            record.mark_verified(rel, local, sha256=exp.sha256, component=exp.component)
            continue
        # Never trust this file again without hashing it: the next download re-fetches it.
        if rel in record.files:
            record.files[rel].verified_mtime_ns = None
    record.save(root)
    return report
