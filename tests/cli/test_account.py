"""login, request-access, access and ls, run as a researcher would run them."""

from __future__ import annotations

import json
import stat
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.cli.config import config_path
from app.cli.errors import EXIT_AUTH, EXIT_NOT_FOUND
from app.clock import FixedClock
from tests.cli.conftest import MODEL, Cli
from tests.factories.catalogue import Published, check, create_model, publish_release
from tests.factories.principals import make_user
from tests.hfcompat.factories import grant


def test_login_checks_the_key_then_stores_it_private(
    cli: Cli, db: Session, clock: FixedClock
) -> None:
    _, key = make_user(db, clock, email="ada@example.org")
    r = cli("login", "--url", "http://testserver", "--token", key)
    assert r.exit_code == 0, r.output
    assert "logged in to http://testserver as ada@example.org (researcher)" in r.output
    path = config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": "http://testserver", "token": key}
    assert key not in r.output


def test_login_with_a_bad_key_saves_nothing_and_exits_auth(cli: Cli) -> None:
    r = cli("login", "--url", "http://testserver", "--token", "wg_" + "x" * 43)
    assert r.exit_code == EXIT_AUTH
    assert "API key is unknown, revoked or expired" in r.output
    assert not config_path().exists()


def test_login_prompts_without_echoing_the_key(cli: Cli, db: Session, clock: FixedClock) -> None:
    _, key = make_user(db, clock)
    r = cli("login", input=f"http://testserver\n{key}\n")
    assert r.exit_code == 0, r.output
    assert key not in r.output
    assert json.loads(config_path().read_text())["token"] == key


def test_ls_shows_what_is_open_now_and_when_the_rest_opens(cli: Cli, release: Published) -> None:
    r = cli("ls", MODEL)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"{MODEL}@v1  revision {release.revision}  your clearance: open"
    config = next(x for x in lines if x.strip().startswith("config "))
    weights = next(x for x in lines if x.strip().startswith("weights "))
    assert config.split()[:3] == ["config", "open", "yes"]
    assert weights.split()[:3] == ["weights", "research", "no"]
    assert weights.rstrip().endswith("2026-07-01T12:00:00Z")
    # config.json and config's signature (app/signing), whose size varies with the signature.
    assert "files you can download now: 2 (" in r.output
    as_json = json.loads(cli("ls", f"{MODEL}@v1", "--json").output)
    assert [f["path"] for f in as_json["files"]] == ["config.json", "signatures/config.sig"]
    assert as_json["revision"] == release.revision


def test_ls_of_an_unknown_model_exits_not_found(cli: Cli) -> None:
    r = cli("ls", "acme/ghost")
    assert r.exit_code == EXIT_NOT_FOUND
    assert "model acme/ghost not found" in r.output
    assert cli("ls", "not-a-model").exit_code == 1


def test_request_access_shows_the_license_and_sends_answers(
    cli: Cli,
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    clock: FixedClock,
) -> None:
    create_model(
        client,
        admin_headers,
        "acme/gated",
        license="Research use only.",
        request_fields=[
            {"name": "affiliation", "type": "text", "required": True},
            {"name": "ethics", "type": "checkbox", "required": True},
        ],
    )
    # Announce the model (a research-tier component) so researchers may see it.
    publish_release(
        client,
        admin_headers,
        model="acme/gated",
        create=False,
        components={"weights": [("research", clock.now() - timedelta(hours=1))]},
    )
    _, key = make_user(db, clock, email="ada@example.org")
    cli.as_user(key)
    missing = cli("request-access", "acme/gated", "--yes", "-a", "affiliation=Uni")
    assert missing.exit_code == 1
    assert "requires the field 'ethics'" in missing.output
    r = cli("request-access", "acme/gated", "--yes", "-a", "affiliation=Uni", "-a", "ethics=yes")
    assert r.exit_code == 0, r.output
    assert "Research use only." in r.output
    assert "is pending" in r.output
    mine = check(
        client.get("/v1/me/access-requests", headers={"Authorization": f"Bearer {key}"}), 200
    )
    assert mine["items"][0]["answers"] == {"affiliation": "Uni", "ethics": True}

    listing = cli("access", "--json")
    view = json.loads(listing.output)
    assert [(x["model"], x["status"]) for x in view["requests"]] == [("acme/gated", "pending")]
    assert view["grants"] == []


def test_request_access_without_yes_and_without_a_terminal_refuses(
    cli: Cli, release: Published, db: Session, clock: FixedClock
) -> None:
    _, key = make_user(db, clock)
    cli.as_user(key)
    r = cli("request-access", MODEL)
    assert r.exit_code == 1
    assert "needs a terminal to ask on, or --yes" in r.output


def test_request_access_needs_a_key(cli: Cli, release: Published) -> None:
    r = cli("request-access", MODEL, "--yes")
    assert r.exit_code == EXIT_AUTH
    assert "weightgate login" in r.output


def test_access_lists_grants(cli: Cli, release: Published, db: Session, clock: FixedClock) -> None:
    user, key = make_user(db, clock)
    grant(db, clock, user.id, MODEL)
    cli.as_user(key)
    r = cli("access")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == ["access requests:", "  (none)", "grants:", f"  {MODEL}"]
