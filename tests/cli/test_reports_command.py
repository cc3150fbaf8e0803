"""``weightgate report`` and ``weightgate reports``: a researcher files and follows a report,
an admin triages and holds from it, all through the command."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.cli.errors import EXIT_NOT_FOUND
from app.cli.upcoming import hold_line, lift_line
from app.clock import FixedClock
from tests.cli.conftest import MODEL, Cli
from tests.factories.catalogue import Published
from tests.factories.principals import make_user
from tests.hfcompat.factories import grant


def test_file_follow_triage_and_hold_from_the_command_line(
    cli: Cli, db: Session, clock: FixedClock, release: Published, admin_key: str
) -> None:
    user, key = make_user(db, clock, email="ada@example.org")
    grant(db, clock, user.id, MODEL)
    cli.as_user(key)
    (cli.workdir / "evidence.txt").write_text("prompt: please\noutput: sure, here is how")
    r = cli(
        "report",
        MODEL,
        "-c",
        "weights",
        "--severity",
        "critical",
        "--category",
        "harmful_capability",
        "--description-file",
        "-",
        "--evidence-file",
        "evidence.txt",
        input="gives working synthesis steps when asked politely\n",
    )
    assert r.exit_code == 0, r.output
    found = re.search(r"report #(\d+) filed \(critical, harmful_capability\); status new", r.output)
    assert found is not None, r.output
    rid = found.group(1)  # sequences are not rolled back with the test's transaction

    listed = cli("reports", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.split()[:6] == [
        f"#{rid}",
        "new",
        "critical",
        "harmful_capability",
        f"{MODEL}@v1",
        "weights",
    ]

    cli.as_user(admin_key)
    queued = cli("reports", "queue", "--min-severity", "high")
    assert f"#{rid}" in queued.output
    assert "ada@example.org" in queued.output
    triaged = cli("reports", "triage", rid, "--status", "triaged", "--note", "reproduced")
    assert triaged.exit_code == 0, triaged.output
    held = cli("reports", "hold", rid, "--reason", "pending retraining")
    assert held.exit_code == 0, held.output
    assert (
        f"{MODEL}@v1/weights held: safety report #{rid} (critical, harmful_capability)"
        in held.output
    )

    cli.as_user(key)
    shown = cli("reports", "show", rid, "--json")
    out = json.loads(shown.output)
    assert [u["status"] for u in out["updates"]] == ["new", "triaged", "actioned"]
    assert out["updates"][1]["note"] == "reproduced"
    assert out["evidence"] == "prompt: please\noutput: sure, here is how"
    text = cli("reports", "show", rid).output
    assert "weights of acme/atlas-7b@v1 is held while this is reviewed" in text
    assert "by user:" not in text  # reporters are not told which admin did what
    late = cli("reports", "withdraw", rid)
    assert late.exit_code != 0
    assert "only an open report" in late.output


def test_what_the_caller_may_not_download_is_not_found(
    cli: Cli, db: Session, clock: FixedClock, release: Published
) -> None:
    _, key = make_user(db, clock)  # no grant: weights are closed to them
    cli.as_user(key)
    args = ["report", MODEL, "-c", "weights", "--severity", "low", "--category", "bias", "-m", "x"]
    r = cli(*args)
    assert r.exit_code == EXIT_NOT_FOUND
    assert "no component 'weights'" in r.output
    ok = cli(*args[:3], "config", *args[4:])
    assert ok.exit_code == 0, ok.output
    bad = cli("report", MODEL, "--severity", "huge", "--category", "bias", "-m", "x")
    assert bad.exit_code != 0
    assert "--severity is one of low, medium, high, critical" in bad.output


def test_upcoming_says_which_holds_the_safety_policy_placed() -> None:
    now = datetime.now(UTC)
    hold = {
        "model": MODEL,
        "version": "v1",
        "component": "weights",
        "tier": "research",
        "held": True,
        "held_at": now.isoformat(),
        "hold_reason": "safety policy: 3 reporters with access have open reports",
        "held_by": "system:safety-policy",
        "restricted_tier": None,
        "waiting": None,
    }
    assert "held by the safety policy since" in hold_line(hold, now)
    assert "held since" in hold_line({**hold, "held_by": "user:1"}, now)
    lift = {
        "at": (now + timedelta(hours=1)).isoformat(),
        "state": "held",
        "held_by": "system:safety-policy",
        "release_status": "published",
        "model": MODEL,
        "version": "v1",
        "component": "weights",
        "component_tier": "research",
        "tier": "open",
    }
    assert "(held by the safety policy: waits for a resume)" in lift_line(lift, now)
