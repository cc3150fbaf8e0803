"""``weightgate publish`` run in-process (typer's runner) against a live server over HTTP:
the whole flow, resuming a draft, and every exit code."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.access.users import create_user_with_key
from app.cli.main import app as cli
from app.cli.publish import EXIT_AUTH, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
from app.clock import SystemClock
from app.db import make_engine, make_sessionmaker
from tests.factories.catalogue import sha256
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import free_port, live_server


@dataclass
class Server:
    url: str
    key: str

    def get(self, path: str) -> Any:
        resp = httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.key}"})
        assert resp.status_code == 200, resp.text
        return resp.json()


def create_admin_key(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            _, key = create_user_with_key(
                session,
                email="publisher@example.org",
                role="admin",
                name="Publisher",
                actor="system:test",
                now=SystemClock().now(),
            )
            session.commit()
    finally:
        engine.dispose()
    return key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("publish-cli")
    with (
        fresh_database(tmp, label="cli") as db_url,
        live_server({"WEIGHTGATE_DATABASE_URL": db_url}, tmp=tmp) as live,
    ):
        yield Server(live.url, create_admin_key(db_url))


@pytest.fixture
def model() -> str:
    return f"acme/m-{uuid.uuid4().hex[:8]}"


def folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


FILES = {
    "model-00001-of-00002.safetensors": os.urandom(300_000),
    "model-00002-of-00002.safetensors": os.urandom(1000),
    "tokenizer.json": b'{"vocab": {}}',
}
SPLIT = ["-c", "weights=*.safetensors", "-c", "tokenizer=tokenizer*"]


def publish(server: Server, *args: str, token: str | None = None, url: str | None = None) -> Result:
    env = {"WEIGHTGATE_URL": url or server.url, "WEIGHTGATE_TOKEN": token or server.key}
    return CliRunner().invoke(cli, ["publish", *args], env=env)


def test_publishes_a_folder_with_schedules(server: Server, model: str, tmp_path: Path) -> None:
    root = folder(tmp_path / "m", FILES)
    before = datetime.now(UTC).replace(microsecond=0)  # relative times count whole seconds
    # An absolute stage, typed in another zone: computed from today, never a literal date.
    research_at = (before + timedelta(days=40)).replace(microsecond=0)
    typed = research_at.astimezone(timezone(timedelta(hours=1))).isoformat()
    research_utc = research_at.isoformat().replace("+00:00", "Z")
    result = publish(
        server,
        str(root),
        "--model",
        model,
        "--version",
        "v1",
        *SPLIT,
        "--schedule",
        f"weights=partner@+2h,research@{typed}",
        "--notes",
        "first cut",
        "--display-name",
        "Atlas",
    )
    assert result.exit_code == 0, result.output
    revision = result.stdout.strip().splitlines()[-1]
    assert len(revision) == 40
    assert f"created model {model}" in result.stderr
    assert "3 uploaded, 0 already in the draft" in result.stderr
    # Not a terminal: one plain line per file, with its hash.
    for path, data in FILES.items():
        assert f"uploaded {path} ({len(data)} bytes, sha256 {sha256(data)})" in result.stderr

    rel = server.get(f"/v1/models/{model}/releases/v1")
    assert (rel["status"], rel["revision"], rel["notes"]) == ("published", revision, "first cut")
    assert server.get(f"/v1/models/{model}")["display_name"] == "Atlas"
    manifest = server.get(f"/v1/models/{model}/releases/v1/manifest")
    # Publishing added each component's signature (app/signing); the rest is the folder.
    uploaded = [f for f in manifest["files"] if not f["path"].startswith("signatures/")]
    assert [s["path"] for s in manifest["signatures"]] == [
        "signatures/tokenizer.sig",
        "signatures/weights.sig",
    ]
    assert {f["path"]: (f["sha256"], f["size"], f["component"]) for f in uploaded} == {
        "model-00001-of-00002.safetensors": (
            sha256(FILES["model-00001-of-00002.safetensors"]),
            300_000,
            "weights",
        ),
        "model-00002-of-00002.safetensors": (
            sha256(FILES["model-00002-of-00002.safetensors"]),
            1000,
            "weights",
        ),
        "tokenizer.json": (sha256(FILES["tokenizer.json"]), 13, "tokenizer"),
    }
    comps = {c["name"]: c for c in server.get(f"/v1/models/{model}/releases/v1/components")}
    partner, research = comps["weights"]["schedule"]
    assert research == {"tier": "research", "at": research_utc}
    # '+2h' became one absolute time when the command started, and was said back.
    assert partner["tier"] == "partner"
    at = datetime.fromisoformat(partner["at"])
    assert before + timedelta(hours=2) <= at <= datetime.now(UTC) + timedelta(hours=2)
    assert (
        f"schedule weights: partner at {partner['at']} (+2h), research at {research_utc}"
        in result.stderr
    )
    assert comps["tokenizer"]["schedule"] == []


def test_a_resumed_draft_keeps_the_times_its_relative_stages_were_given(
    server: Server, model: str, tmp_path: Path
) -> None:
    root = folder(tmp_path / "m", FILES)
    args = [str(root), "--model", model, "--version", "v1", *SPLIT, "-s", "weights=open@+1h"]
    assert publish(server, *args, "--no-publish").exit_code == 0
    first = server.get(f"/v1/models/{model}/releases/v1/components")
    again = publish(server, *args)
    assert again.exit_code == 0, again.output
    # The same components and schedules; publishing added one signature file to each.
    after = server.get(f"/v1/models/{model}/releases/v1/components")
    assert after == [{**c, "file_count": c["file_count"] + 1} for c in first]
    # A relative stage of another tier is still a different schedule.
    other = publish(server, *args[:-1], "weights=research@+1h", "--version", "v2", "--no-publish")
    assert other.exit_code == 0, other.output
    changed = publish(server, *args[:-1], "weights=open@+1h", "--version", "v2")
    assert changed.exit_code == EXIT_REFUSED
    assert "already exists in the draft with another schedule" in changed.stderr


def test_a_rerun_resumes_the_draft_and_sends_only_what_changed(
    server: Server, model: str, tmp_path: Path
) -> None:
    root = folder(tmp_path / "m", FILES)
    first = publish(server, str(root), "--model", model, "--version", "v1", *SPLIT, "--no-publish")
    assert first.exit_code == 0, first.output
    assert first.stdout == ""  # nothing published, no revision
    assert "left" in first.stderr
    assert server.get(f"/v1/models/{model}/releases/v1")["status"] == "draft"

    (root / "tokenizer.json").write_bytes(b'{"vocab": {"a": 1}}')
    second = publish(server, str(root), "--model", model, "--version", "v1", *SPLIT)
    assert second.exit_code == 0, second.output
    assert f"resuming draft {model} v1" in second.stderr
    assert "1 uploaded, 2 already in the draft" in second.stderr
    assert "unchanged model-00001-of-00002.safetensors" in second.stderr
    manifest = server.get(f"/v1/models/{model}/releases/v1/manifest")
    tok = next(f for f in manifest["files"] if f["path"] == "tokenizer.json")
    assert tok["sha256"] == sha256(b'{"vocab": {"a": 1}}')

    again = publish(server, str(root), "--model", model, "--version", "v1", *SPLIT)
    assert again.exit_code == EXIT_REFUSED
    assert "is already published (revision" in again.stderr
    assert "publish a new version" in again.stderr


def test_extra_draft_files_need_prune(server: Server, model: str, tmp_path: Path) -> None:
    root = folder(tmp_path / "m", {**FILES, "extra.safetensors": b"old"})
    args = [str(root), "--model", model, "--version", "v1", *SPLIT]
    assert publish(server, *args, "--no-publish").exit_code == 0
    (root / "extra.safetensors").unlink()
    refused = publish(server, *args)
    assert refused.exit_code == EXIT_REFUSED
    assert "the draft holds 1 file(s) not in the folder (extra.safetensors)" in refused.stderr
    pruned = publish(server, *args, "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert "deleted extra.safetensors from the draft" in pruned.stderr
    paths = [f["path"] for f in server.get(f"/v1/models/{model}/releases/v1/manifest")["files"]]
    assert "extra.safetensors" not in paths


def test_a_different_schedule_on_a_resumed_draft_is_refused(
    server: Server, model: str, tmp_path: Path
) -> None:
    root = folder(tmp_path / "m", FILES)
    args = [str(root), "--model", model, "--version", "v1", *SPLIT]
    assert publish(server, *args, "--no-publish").exit_code == 0
    result = publish(server, *args, "--schedule", "weights=open@+3d")
    assert result.exit_code == EXIT_REFUSED
    assert "component weights already exists in the draft with another schedule" in result.stderr


def test_no_create_model_requires_the_model(server: Server, model: str, tmp_path: Path) -> None:
    root = folder(tmp_path / "m", FILES)
    result = publish(
        server, str(root), "--model", model, "--version", "v1", *SPLIT, "--no-create-model"
    )
    assert result.exit_code == EXIT_REFUSED
    assert f"model {model} does not exist" in result.stderr
    assert httpx.get(f"{server.url}/v1/models/{model}").status_code == 404


def test_the_server_refusing_a_file_name_is_reported(
    server: Server, model: str, tmp_path: Path
) -> None:
    root = folder(tmp_path / "m", {"ok.bin": b"1", "bad\x01name.bin": b"2"})
    result = publish(server, str(root), "--model", model, "--version", "v1", "-c", "w=*.bin")
    assert result.exit_code == EXIT_REFUSED
    assert "control or format characters are not allowed (invalid_path, HTTP 422)" in result.stderr
    assert server.get(f"/v1/models/{model}/releases/v1")["status"] == "draft"


def test_credentials_and_reachability(server: Server, model: str, tmp_path: Path) -> None:
    root = folder(tmp_path / "m", FILES)
    args = [str(root), "--model", model, "--version", "v1", *SPLIT]
    bad = publish(server, *args, token="wg_" + "x" * 43)
    assert bad.exit_code == EXIT_AUTH
    assert "API key is unknown, revoked or expired (invalid_api_key, HTTP 401)" in bad.stderr
    assert "wg_xxx" not in bad.output  # the key is never echoed
    missing = CliRunner().invoke(
        cli, ["publish", *args], env={"WEIGHTGATE_URL": server.url, "WEIGHTGATE_TOKEN": ""}
    )
    assert missing.exit_code == EXIT_AUTH
    assert "no API key" in missing.stderr
    down = publish(server, *args, url=f"http://127.0.0.1:{free_port()}")
    assert down.exit_code == EXIT_UNREACHABLE
    assert "cannot reach http://127.0.0.1:" in down.stderr


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--model", "no-slash"], "expected namespace/name"),
        (["-c", "nopattern"], "expected NAME=PATTERN"),
        (["--schedule", "weights=open@tomorrow"], "not an ISO 8601 date-time"),
        (["-c", "docs=*.md"], "component(s) docs match no file"),
    ],
)
def test_usage_errors_exit_2_before_any_request(
    server: Server, tmp_path: Path, extra: list[str], why: str
) -> None:
    root = folder(tmp_path / "m", FILES)
    args = [str(root), "--model", "acme/x", "--version", "v1", *SPLIT, *extra]
    # An unreachable URL proves no request was needed to find the mistake.
    result = publish(server, *args, url=f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == EXIT_USAGE, result.output
    assert why in result.stderr


def test_dry_run_prints_the_plan_only(server: Server, tmp_path: Path) -> None:
    root = folder(tmp_path / "m", FILES)
    result = publish(
        server,
        str(root),
        "--model",
        "acme/x",
        "--version",
        "v1",
        *SPLIT,
        "--dry-run",
        url=f"http://127.0.0.1:{free_port()}",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "weights\t300000\tmodel-00001-of-00002.safetensors",
        "weights\t1000\tmodel-00002-of-00002.safetensors",
        "tokenizer\t13\ttokenizer.json",
    ]
