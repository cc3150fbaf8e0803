"""Every refusal reason answers the same code on every edge: ``/v1/files``, ``POST
/v1/tokens``, the catalogue's manifest, the Hub's ``resolve`` and ``tree``, and the CLI.

One world (tests/tokens/world.py) with everything open but ``config``; each case closes
``config`` to the researcher for one reason, the way it happens in production (a grant
revoked, a stage moved ahead, an emergency restriction), and every edge is asked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.cli.errors import AuthError, EmbargoError, from_problem
from app.clock import FixedClock
from app.models import Component, Grant, Stage
from app.policy.decision import ACCESS_REASONS, Reason
from app.refusals import ANSWERS
from tests.tokens.world import MODEL, World, build_world

PATH = "config.json"
DAY = timedelta(days=1)


@pytest.fixture
def world(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> World:
    w = build_world(client, db, clock, admin_headers)
    # Open the weights to everyone, so that config is the only thing closed to anyone.
    t0 = clock.now()
    weights = db.scalar(select(Component.id).where(Component.name == "weights"))
    for tier, at in (("research", t0 - DAY / 2), ("open", t0 - DAY / 4)):
        db.execute(
            update(Stage).where(Stage.component_id == weights, Stage.tier == tier).values(at=at)
        )
    db.commit()
    return w


def _config(db: Session) -> int:
    found = db.scalar(select(Component.id).where(Component.name == "config"))
    assert found is not None
    return found


def revoke_grant(db: Session, world: World) -> datetime | None:
    db.execute(
        update(Grant)
        .where(Grant.user_id == world.researcher_id)
        .values(revoked_at=world.clock.now())
    )
    return None


def move_stage_ahead(db: Session, world: World) -> datetime | None:
    # Partners first (so the component stays announced), researchers in five days.
    now, config = world.clock.now(), _config(db)
    opens = now + 5 * DAY
    db.execute(update(Stage).where(Stage.component_id == config).values(at=opens))
    db.add(Stage(component_id=config, tier="partner", at=now - DAY, created_at=now - DAY))
    return opens


def restrict(db: Session, world: World) -> datetime | None:
    db.execute(
        update(Component).where(Component.id == _config(db)).values(restricted_tier="partner")
    )
    return None


def hold_before_research(db: Session, world: World) -> datetime | None:
    # Partners since yesterday, researchers since twelve hours ago; a hold placed between
    # the two (as a safety policy holds a stage before it comes) froze it at partner.
    now, config = world.clock.now(), _config(db)
    db.execute(update(Stage).where(Stage.component_id == config).values(at=now - DAY / 2))
    db.add(Stage(component_id=config, tier="partner", at=now - DAY, created_at=now - DAY))
    db.execute(
        update(Component)
        .where(Component.id == config)
        .values(held_at=now - DAY * 3 / 4, hold_reason="safety reports", held_by="user:1")
    )
    return None


CASES: dict[Reason, Callable[[Session, World], datetime | None]] = {
    Reason.HELD: hold_before_research,
    Reason.GRANT_REQUIRED: revoke_grant,
    Reason.EMBARGOED: move_stage_ahead,
    Reason.NOT_OPEN_TO_YOU: restrict,
}


def test_every_access_reason_has_a_case() -> None:
    assert set(CASES) == set(ACCESS_REASONS)


def _problem(resp: Any, reason: Reason, until: datetime | None, *, hub: bool) -> dict[str, Any]:
    answer = ANSWERS[reason]
    body: dict[str, Any] = resp.json()
    assert (resp.status_code, body["code"]) == (answer.error.status, answer.code), body
    assert resp.headers["content-type"].startswith("application/problem+json")
    if until is not None:
        assert datetime.fromisoformat(body["until"]) == until
    else:
        assert body.get("until") is None
    if hub:
        assert resp.headers["X-Error-Code"] == answer.hub
        assert body["detail"] in resp.headers["X-Error-Message"]
    else:
        assert "X-Error-Code" not in resp.headers
    return body


@pytest.mark.parametrize("reason", list(CASES), ids=str)
def test_one_reason_one_answer_on_every_edge(world: World, db: Session, reason: Reason) -> None:
    client, researcher = world.client, world.researcher
    # A token issued while config was open: /v1/files re-checks at redemption.
    token = str(world.token(researcher, components=["config"])["token"])
    until = CASES[reason](db, world)
    db.commit()
    code = ANSWERS[reason].code

    files = client.get(f"/v1/files/{MODEL}/v1/{PATH}", params={"token": token})
    _problem(files, reason, until, hub=False)

    issue = client.post(
        "/v1/tokens", json={"model": MODEL, "components": ["config"]}, headers=researcher
    )
    issued = _problem(issue, reason, until, hub=False)

    manifest = client.get(f"/v1/models/{MODEL}/releases/v1/manifest", headers=researcher)
    by_name = {c["name"]: c for c in manifest.json()["components"]}
    assert by_name["config"]["code"] == code
    assert by_name["config"]["downloadable"] is False
    assert {c["code"] for n, c in by_name.items() if n != "config"} == {None}

    resolve = client.get(f"/{MODEL}/resolve/main/{PATH}", headers=researcher)
    _problem(resolve, reason, until, hub=True)
    head = client.head(f"/{MODEL}/resolve/main/{PATH}", headers=researcher)
    assert (head.status_code, head.headers["X-Error-Code"]) == (
        ANSWERS[reason].error.status,
        ANSWERS[reason].hub,
    )
    tree = client.get(f"/api/models/{MODEL}/tree/main/{PATH}", headers=researcher)
    _problem(tree, reason, until, hub=True)

    # The CLI turns the server's answer into its own error, keeping the code, with the
    # embargo's date where there is one and the embargo exit code for any schedule closure.
    cli = from_problem(issue.status_code, issued, what="getting a download token")
    assert cli.code == code
    if reason == Reason.GRANT_REQUIRED:
        assert isinstance(cli, AuthError)
    else:
        assert isinstance(cli, EmbargoError)
        assert cli.until == until
