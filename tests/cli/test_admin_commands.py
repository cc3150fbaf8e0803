"""The admin commands — ``weightgate schedule``, ``requests``, ``upcoming`` — and what ``ls``
tells a researcher about requesting access, run in-process (typer's runner) against a live
server over HTTP, with an admin key, as an admin would from a terminal. Every date is
computed from now."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli.main import app as cli
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import create_user, live_server

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Live:
    url: str
    admin: str
    tmp: Path
    server: Any

    def api(self, method: str, path: str, *, key: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {key or self.admin}"}
        resp = httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def run(self, *args: str, key: str | None = "admin", input: str | None = None) -> Result:
        env = {"WEIGHTGATE_URL": self.url, "XDG_CONFIG_HOME": str(self.tmp / "config")}
        token = self.admin if key == "admin" else key
        env["WEIGHTGATE_TOKEN"] = token or ""
        return CliRunner().invoke(cli, list(args), env=env, input=input)

    def user(self, email: str | None = None) -> str:
        return create_user(self.server, email or f"{uuid.uuid4().hex[:8]}@example.org")

    def publish(
        self,
        model: str,
        components: dict[str, list[tuple[str, datetime]]],
        *,
        version: str = "v1",
        create: bool = True,
        publish: bool = True,
        **model_fields: Any,
    ) -> None:
        """A release with one small file per component."""
        if create:
            self.api(
                "POST", "/v1/models", json={"id": model, "display_name": model, **model_fields}
            )
        base = f"/v1/models/{model}/releases"
        self.api("POST", base, json={"version": version})
        for name, stages in components.items():
            schedule = [{"tier": t, "at": iso(at)} for t, at in stages]
            self.api(
                "POST", f"{base}/{version}/components", json={"name": name, "schedule": schedule}
            )
            self.api(
                "PUT",
                f"{base}/{version}/files/{name}.bin",
                params={"component": name},
                content=f"{model} {version} {name}".encode(),
            )
        if publish:
            self.api("POST", f"{base}/{version}/publish")

    def schedule(self, model: str, component: str, version: str = "v1") -> Any:
        return self.api(
            "GET", f"/v1/models/{model}/releases/{version}/components/{component}/schedule"
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("admin-cli")
    with (
        fresh_database(tmp, label="admin") as db_url,
        # No scheduler: these commands only read and change schedules, and a scheduler tick
        # would send the "due now" reminder that `upcoming` is asked to show (a race that
        # lost under load).
        live_server(
            {"WEIGHTGATE_DATABASE_URL": db_url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}, tmp=tmp
        ) as server,
    ):
        yield Live(server.url, create_user(server, "ops@example.org", "admin"), tmp, server)


@pytest.fixture
def model() -> str:
    return f"acme/m-{uuid.uuid4().hex[:8]}"


def stages(schedule: Any) -> dict[str, datetime]:
    return {s["tier"]: datetime.fromisoformat(s["at"]) for s in schedule["stages"]}


# --- schedule -------------------------------------------------------------------------------


def test_set_changes_only_the_stages_named(live: Live, model: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    live.publish(
        model,
        {
            "weights": [
                ("partner", now + 2 * HOUR),
                ("research", now + 2 * DAY),
                ("open", now + 30 * DAY),
            ],
            "config": [("open", now - HOUR)],
        },
    )
    before = datetime.now(UTC)
    moved = live.run(
        "schedule", "set", f"{model}@v1", "weights", "research@+3d", "--reason", "eval late"
    )
    after = datetime.now(UTC)
    assert moved.exit_code == 0, moved.output
    got = stages(live.schedule(model, "weights"))
    assert got["partner"] == now + 2 * HOUR
    assert got["open"] == now + 30 * DAY
    assert before + 3 * DAY - timedelta(seconds=1) <= got["research"] <= after + 3 * DAY
    # The relative time is said back as the absolute one it became, and the result shown.
    assert f"stage research at {iso(got['research'])} (+3d)" in moved.stderr
    assert (
        f"rescheduled {model}@v1 weights: internal now, next partner at {iso(now + 2 * HOUR)}"
        in moved.stdout
    )
    assert re.search(
        rf"research\s+{re.escape(iso(got['research']))}\s+upcoming\s+in 3d", moved.stdout
    )

    # Without @VERSION: the latest published release. An absolute time in another zone.
    open_at = (now + 40 * DAY).astimezone(datetime.now().astimezone().tzinfo)
    assert (
        live.run("schedule", "set", model, "weights", f"open@{open_at.isoformat()}").exit_code == 0
    )
    assert stages(live.schedule(model, "weights"))["open"] == now + 40 * DAY
    same = live.run("schedule", "set", model, "weights", f"open@{iso(now + 40 * DAY)}")
    assert (same.exit_code, same.stdout.strip()) == (0, f"{model}@v1 weights: unchanged")

    # Past stages stay: asking to move one says why, and nothing is sent.
    past = live.run("schedule", "set", model, "config", "open@+1d")
    assert past.exit_code == 1
    assert "the 'open' stage took effect at" in past.stderr
    assert "weightgate schedule restrict" in past.stderr
    # A change that would put stages out of order names the collision and the way out.
    order = live.run("schedule", "set", model, "weights", "research@+50d")
    assert order.exit_code == 1
    assert "'open' at" in order.stderr
    assert "--drop" in order.stderr
    fixed = live.run(
        "schedule", "set", model, "weights", "research@+50d", "--drop", "open", "--dry-run"
    )
    assert fixed.exit_code == 0
    assert "would become partner at" in fixed.stdout
    assert stages(live.schedule(model, "weights"))["open"] == now + 40 * DAY  # dry run
    dropped = live.run("schedule", "set", model, "weights", "--drop", "open", "--reason", "r")
    assert dropped.exit_code == 0, dropped.output
    assert set(stages(live.schedule(model, "weights"))) == {"partner", "research"}
    # Bad input is a usage error, before any request.
    for args, why in [
        (("weights", "open"), "a stage is TIER@WHEN"),
        (("weights", "public@+1d"), "the tier is one of partner, research, open"),
        (("weights", "open@tomorrow"), "is not an ISO 8601 date-time"),
        (("weights", "open@2030-01-01T00:00:00"), "has no time zone"),
        (("weights",), "nothing to change"),
    ]:
        bad = live.run("schedule", "set", model, *args)
        assert bad.exit_code == 2, (args, bad.stderr)
        assert why in bad.stderr, (args, bad.stderr)


def test_hold_lift_resume_and_the_409s_explained(live: Live, model: str) -> None:
    now = datetime.now(UTC)
    live.publish(model, {"weights": [("partner", now + 2 * HOUR), ("open", now + 30 * DAY)]})
    shown = live.run("schedule", "show", model, "weights")
    assert shown.exit_code == 0, shown.output
    assert f"{model}@v1 weights: internal now, next partner at" in shown.stdout
    held = live.run("schedule", "hold", model, "weights", "--reason", "red-team finding")
    assert held.exit_code == 0, held.output
    assert f"held {model}@v1 weights: internal now, nothing ahead" in held.stdout
    assert "held since" in held.stdout
    assert "red-team finding" in held.stdout
    again = live.run("schedule", "hold", model, "weights", "--reason", "x")
    assert again.exit_code == 0
    assert "already held" in again.stdout
    # Lifting while held: why, and the command that resolves it.
    lift = live.run("schedule", "lift", model, "weights")
    assert lift.exit_code == 1
    assert f"{model}@v1 weights is held (since" in lift.stderr
    assert "reason: red-team finding): a lift cannot pass a hold" in lift.stderr
    assert f"`weightgate schedule resume {model}@v1 weights`" in lift.stderr
    assert live.run("schedule", "resume", model, "weights", "--reason", "fixed").exit_code == 0
    not_held = live.run("schedule", "resume", model, "weights")
    assert not_held.exit_code == 0
    assert "neither held nor restricted" in not_held.stdout
    lifted = live.run("schedule", "lift", model, "weights", "--reason", "early access")
    assert lifted.exit_code == 0, lifted.output
    assert live.schedule(model, "weights")["tier"] == "partner"
    to_open = live.run("schedule", "lift", model, "weights", "--tier", "open")
    assert to_open.exit_code == 0
    assert live.schedule(model, "weights")["tier"] == "open"
    # Restricted: a lift past the ceiling says how to end or move it.
    live.run("schedule", "restrict", model, "weights", "--tier", "partner", "--reason", "leak")
    capped = live.run("schedule", "lift", model, "weights", "--tier", "open")
    assert capped.exit_code == 1
    assert "is restricted to 'partner' (since" in capped.stderr
    assert f"`weightgate schedule resume {model}@v1 weights`" in capped.stderr
    # The server's own refusals come through with their words; a missing one is exit 4.
    missing = live.run("schedule", "show", model, "nope")
    assert missing.exit_code == 4
    assert "component nope not found" in missing.stderr
    assert live.run("schedule", "hold", model, "weights").exit_code == 2  # --reason required


def test_restrict_revokes_only_the_tokens_it_closes(live: Live, model: str) -> None:
    now = datetime.now(UTC)
    live.publish(model, {"weights": [("open", now - HOUR)], "config": [("open", now - HOUR)]})
    researcher = live.user()
    tokens = {
        c: live.api("POST", "/v1/tokens", key=researcher, json={"model": model, "components": [c]})
        for c in ("weights", "config")
    }
    bad = live.run("schedule", "restrict", model, "weights", "--tier", "open", "--reason", "x")
    assert bad.exit_code == 2
    assert "to end a restriction: resume" in bad.stderr
    out = live.run(
        "schedule", "restrict", model, "weights", "--tier", "partner", "--reason", "leak"
    )
    assert out.exit_code == 0, out.output
    assert f"restricted {model}@v1 weights: partner now" in out.stdout
    assert f"{model}@v1 weights: 1 download token(s) revoked" in out.stdout
    status = {
        c: live.api("GET", f"/v1/tokens/{t['jti']}", key=researcher)["revoked_at"] is not None
        for c, t in tokens.items()
    }
    assert status == {"weights": True, "config": False}
    config = httpx.get(
        tokens["config"]["files"][0]["url"], params={"token": tokens["config"]["token"]}
    )
    assert config.status_code == 200


def test_all_releases_applies_one_action_to_every_release(live: Live, model: str) -> None:
    now = datetime.now(UTC)
    live.publish(model, {"weights": [("open", now + 10 * DAY)]})
    live.publish(model, {"weights": [("open", now + 20 * DAY)]}, version="v2", create=False)
    live.publish(
        model, {"config": [("open", now - HOUR)]}, version="v3", create=False, publish=False
    )
    held = live.run("schedule", "hold", model, "weights", "--all-releases", "--reason", "audit")
    assert held.exit_code == 0, held.output
    assert f"held {model}@v1 weights" in held.stdout
    assert f"held {model}@v2 weights" in held.stdout
    assert "note: no component weights in v3" in held.stderr
    shown = live.run("schedule", "show", model, "weights", "--all-releases", "--json")
    docs = json.loads(shown.stdout)
    assert [(d["version"], d["held"], d["hold_reason"]) for d in docs] == [
        ("v1", True, "audit"),
        ("v2", True, "audit"),
    ]
    # Releases keep their own schedules; one relative time, resolved once, for both.
    assert live.run("schedule", "resume", model, "weights", "--all-releases").exit_code == 0
    moved = live.run("schedule", "set", model, "weights", "open@+5d", "--all-releases")
    assert moved.exit_code == 0, moved.output
    ats = {v: stages(live.schedule(model, "weights", v))["open"] for v in ("v1", "v2")}
    assert ats["v1"] == ats["v2"]
    # One release failing does not stop the others; the command fails at the end.
    live.run("schedule", "hold", f"{model}@v1", "weights", "--reason", "only v1")
    lift = live.run("schedule", "lift", model, "weights", "--all-releases")
    assert lift.exit_code == 1
    assert f"error: {model}@v1 weights: {model}@v1 weights is held (since" in lift.stderr
    assert f"lifted {model}@v2 weights: open now" in lift.stdout
    assert "1 of 3 releases failed" in lift.stderr
    none = live.run("schedule", "show", model, "tokenizer", "--all-releases")
    assert none.exit_code == 4
    assert "no release of" in none.stderr
    pinned = live.run("schedule", "show", f"{model}@v1", "weights", "--all-releases")
    assert pinned.exit_code == 2
    assert "without @v1" in pinned.stderr


def test_schedule_commands_need_an_admin_key(live: Live, model: str) -> None:
    live.publish(model, {"weights": [("open", datetime.now(UTC) - HOUR)]})
    assert live.run("schedule", "show", model, "weights", key=None).exit_code == 3
    researcher = live.run("schedule", "hold", model, "weights", "--reason", "x", key=live.user())
    assert researcher.exit_code == 3
    assert live.schedule(model, "weights")["held"] is False


# --- requests -------------------------------------------------------------------------------


def request_access(live: Live, model: str, key: str, affiliation: str) -> int:
    body = {"answers": {"affiliation": affiliation}, "accept_license": True}
    return int(live.api("POST", f"/v1/models/{model}/access-requests", key=key, json=body)["id"])


def test_requests_list_approve_and_deny(live: Live, model: str) -> None:
    now = datetime.now(UTC)
    fields = [{"name": "affiliation", "type": "text", "required": True}]
    live.publish(model, {"weights": [("research", now - HOUR)]}, request_fields=fields)
    other = f"{model}-b"
    live.publish(other, {"weights": [("research", now - HOUR)]}, request_fields=fields)
    tag = uuid.uuid4().hex[:6]
    emails = [f"{who}-{tag}@example.org" for who in ("ada", "bob", "cy")]
    keys = [live.user(e) for e in emails]
    ids = [request_access(live, model, k, f"Uni {i}") for i, k in enumerate(keys)]
    other_id = request_access(live, other, keys[0], "Uni 0")

    listed = live.run("requests", "list", "--model", model)
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.stdout.splitlines() if line.startswith("#")]
    assert [int(r.split()[0][1:]) for r in rows] == ids
    assert emails[0] in rows[0]
    assert "pending" in rows[0]
    assert "affiliation=Uni 0" in rows[0]
    assert f"3 pending request(s) ({model}: 3)" in listed.stdout
    mine = live.run("requests", "list", "--user", emails[0], "--json")
    assert {r["id"] for r in json.loads(mine.stdout)} == {ids[0], other_id}

    approved = live.run("requests", "approve", str(ids[0]), "--reason", "known lab")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.strip() == f"approved 1: #{ids[0]}"
    assert live.api("GET", f"/v1/access-requests/{ids[0]}")["status"] == "approved"
    twice = live.run("requests", "approve", str(ids[0]), "999999999")
    assert twice.exit_code == 1
    assert f"skipped #{ids[0]}: already approved" in twice.stderr
    assert "skipped #999999999: no such request" in twice.stderr
    unknown = live.run("requests", "approve", "999999999")
    assert unknown.exit_code == 4

    # The pending queue of one model, denied at once; without a terminal, only with --yes.
    asks = live.run("requests", "deny", "--all-pending", "--model", model, "--reason", "no")
    assert asks.exit_code == 1
    assert "needs a terminal to ask on, or --yes" in asks.stderr
    denied = live.run(
        "requests", "deny", "--all-pending", "--model", model, "--reason", "out of scope", "--yes"
    )
    assert denied.exit_code == 0, denied.output
    assert denied.stdout.strip() == f"denied 2: #{ids[1]} #{ids[2]}"
    for rid in ids[1:]:
        got = live.api("GET", f"/v1/access-requests/{rid}")
        assert (got["status"], got["reason"]) == ("denied", "out of scope")
    assert live.api("GET", f"/v1/access-requests/{other_id}")["status"] == "pending"
    empty = live.run("requests", "approve", "--all-pending", "--model", model, "--yes")
    assert empty.exit_code == 0
    assert "no pending request matches" in empty.stdout
    everything = live.run("requests", "list", "--model", model, "--status", "all")
    assert f"3 request(s) ({model}: 3)" in everything.stdout
    # Usage mistakes.
    assert live.run("requests", "deny", str(other_id)).exit_code == 2  # --reason required
    both = live.run("requests", "approve", str(other_id), "--all-pending")
    assert both.exit_code == 2
    assert "not both" in both.stderr
    stray = live.run("requests", "approve", str(other_id), "--model", other)
    assert stray.exit_code == 2
    assert "use --all-pending" in stray.stderr


# --- upcoming -------------------------------------------------------------------------------


def test_upcoming_shows_lifts_holds_and_reminders(live: Live, model: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    live.publish(
        model,
        {
            "weights": [("partner", now + 2 * HOUR), ("open", now + 20 * DAY)],
            "safety": [("research", now + 3 * DAY)],
            "config": [("open", now - HOUR)],
        },
    )
    live.run("schedule", "hold", model, "safety", "--reason", "classifier retrain")
    live.run("schedule", "restrict", model, "config", "--tier", "internal", "--reason", "pii")
    out = live.run("upcoming", "--model", model, "--within", "7d")
    assert out.exit_code == 0, out.output
    text = out.stdout
    lifts = text[text.index("lifts") : text.index("held or restricted now:")]
    assert f"{iso(now + 2 * HOUR)}  in 2h" in lifts or f"{iso(now + 2 * HOUR)}  in 1h 59m" in lifts
    assert f"{model}@v1 weights: internal -> partner" in lifts
    assert f"{model}@v1 safety: internal -> research  (held: waits for a resume)" in lifts
    assert "open" not in lifts  # 20 days is beyond the window
    holds = text[text.index("held or restricted now:") : text.index("reminders")]
    assert f"{model}@v1 safety (internal now)" in holds
    assert "classifier retrain" in holds
    assert "a resume opens it to research at" in holds
    assert f"{model}@v1 config (internal now)" in holds
    assert "restricted to internal since" in holds
    assert "a resume opens it to open at once" in holds
    reminders = text[text.index("reminders") :]
    # The lift in 2 hours is inside the 24-hour notice: its reminder is due now.
    assert re.search(
        rf"due now\s+embargo.upcoming: {model}@v1 weights opens to partner at "
        rf"{re.escape(iso(now + 2 * HOUR))} \(in 2h\)",
        reminders,
    )
    assert "safety" not in reminders  # held: no notice goes out
    doc = json.loads(live.run("upcoming", "--model", model, "--json").stdout)
    assert {e["component"] for e in doc["lifts"]} == {"weights", "safety"}
    assert {h["component"] for h in doc["holds"]} == {"safety", "config"}


def test_upcoming_lists_credentials_that_expire(live: Live) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    name = f"Lab {uuid.uuid4().hex[:6]}"
    partner = live.api(
        "POST",
        "/v1/partners",
        json={"name": name, "models": [], "secret_expires_at": iso(now + 10 * DAY)},
    )
    out = live.run("upcoming", "--within", "4d")
    assert out.exit_code == 0, out.output
    line = next(x for x in out.stdout.splitlines() if name in x)
    assert line.strip().startswith(iso(now + 3 * DAY))
    assert (
        f"credentials.expiring: partner {name} ({partner['client_id']}): client secret "
        f"expires at {iso(now + 10 * DAY)}" in line
    )
    assert name not in live.run("upcoming", "--within", "2d").stdout
    bad = live.run("upcoming", "--within", "soon")
    assert bad.exit_code == 2
    assert "--within" in bad.stderr


# --- ls for researchers ------------------------------------------------------------------------


def test_ls_tells_a_researcher_what_a_request_would_open(live: Live, model: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    live.publish(
        model,
        {
            "weights": [("research", now - HOUR), ("open", now + 30 * DAY)],
            "safety": [
                ("partner", now - HOUR),
                ("research", now + 2 * DAY),
                ("open", now + 60 * DAY),
            ],
            "config": [("open", now - HOUR)],
        },
    )
    researcher = live.user()
    out = live.run("ls", model, key=researcher)
    assert out.exit_code == 0, out.output
    tail = out.stdout[out.stdout.index("with an approved access request") :]
    assert f"with an approved access request (weightgate request-access {model}):" in tail
    assert re.search(r"\n  weights\s+now\n", tail)
    assert re.search(rf"\n  safety\s+from {re.escape(iso(now + 2 * DAY))} \(in (1d 23h|2d)\)", tail)
    assert "config" not in tail  # already open to everyone
    # A partner without an agreement for the model cannot request access: no outlook.
    partner = live.api("POST", "/v1/partners", json={"name": f"P {model}", "models": []})
    access = httpx.post(
        live.url + "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": partner["client_id"],
            "client_secret": partner["client_secret"],
        },
    ).json()["access_token"]
    as_partner = live.run("ls", model, key=access)
    assert as_partner.exit_code == 0, as_partner.output
    assert "request" not in as_partner.stdout
    anonymous = live.run("ls", model, key=None)
    assert "requesting access needs an account: weightgate login first" in anonymous.stdout
    rid = live.api(
        "POST",
        f"/v1/models/{model}/access-requests",
        key=researcher,
        json={"answers": {}, "accept_license": True},
    )["id"]
    pending = live.run("ls", model, key=researcher)
    assert f"your request #{rid} is pending (asked" in pending.stdout
    live.run("requests", "approve", str(rid))
    granted = live.run("ls", model, key=researcher)
    assert "with an approved access request" not in granted.stdout
    assert re.search(r"weights\s+research\s+yes", granted.stdout)
