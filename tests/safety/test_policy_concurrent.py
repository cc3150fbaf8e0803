"""The automatic hold under real concurrency: PostgreSQL, two server processes, twenty
researchers with access reporting the same component at once, with K = 3.

Exactly one hold, one audit event, one webhook per subscription; the next stage, due a few
seconds later, does not take effect (a token for it is refused with ``component_held``) and
is not recorded as lifted; once an admin resumes, it takes effect and is recorded once. The
test makes its own database, so it runs once, in the PostgreSQL pass.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.access.users import create_user_with_key
from app.audit.verify import verify_chain
from app.db import make_engine, make_sessionmaker
from app.models import AuditEvent, Grant, Model, Stage, Transition, WebhookDelivery
from tests.fixtures.databases import fresh_database
from tests.fixtures.receiver import Received, webhook_receiver
from tests.fixtures.servers import at_once, live_server, publish_over_http

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

MODEL = "acme/watched"
REPORTERS = 20
STAGE_IN = timedelta(seconds=15)  # the open stage, from publication
DATA = b"w" * 2048


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def held_paths(got: list[Received]) -> list[str]:
    """Which subscription each component.held delivery went to."""
    return [
        "all" if r.path.endswith("/all") else "one"
        for r in got
        if json.loads(r.body)["type"] == "component.held"
    ]


def test_twenty_concurrent_reports_hold_the_next_stage_once(tmp_path: Path) -> None:
    with (
        fresh_database(tmp_path, kind="postgresql", label="safety") as db_url,
        webhook_receiver() as receiver,
    ):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        now = datetime.now(UTC)
        with sessions() as db:
            _, admin_key = create_user_with_key(
                db, email="ops@example.org", role="admin", name="ops", actor="t", now=now
            )
            keys = [
                create_user_with_key(
                    db, email=f"r{i}@example.org", role="researcher", name="", actor="t", now=now
                )
                for i in range(REPORTERS + 1)
            ]
            db.commit()
        admin = {"Authorization": f"Bearer {admin_key}"}
        env = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_SCHEDULER_INTERVAL": "0.2",
            "WEIGHTGATE_WEBHOOK_ALLOW_PRIVATE": "true",
            "WEIGHTGATE_QUOTA_REPORTS_PER_HOUR": "5",
        }
        try:
            with live_server(env, tmp=tmp_path, workers=2) as server:
                url = server.url
                hooks = [
                    {"url": receiver.url, "events": ["component.held"], "secret": "s" * 20},
                    {"url": receiver.url + "/all", "events": ["*"], "secret": "t" * 20},
                ]
                for hook in hooks:
                    httpx.post(url + "/v1/webhooks", json=hook, headers=admin).raise_for_status()
                opens_at = datetime.now(UTC) + STAGE_IN
                publish_over_http(
                    url,
                    admin_key,
                    MODEL,
                    components={
                        "weights": [
                            ("research", (now - timedelta(days=1)).isoformat()),
                            ("open", opens_at.isoformat()),
                        ]
                    },
                    files={"w.bin": ("weights", DATA)},
                )
                policy = {
                    "enabled": True,
                    "min_reporters": 3,
                    "min_severity": "high",
                    "window_hours": 1,
                }
                httpx.put(
                    f"{url}/v1/models/{MODEL}/safety-policy", json=policy, headers=admin
                ).raise_for_status()
                with sessions() as db:
                    model_id = db.scalar(select(Model.id).where(Model.name == "watched"))
                    for user, _ in keys[:REPORTERS]:
                        db.add(Grant(user_id=user.id, model_id=model_id, created_at=now))
                    db.commit()
                reporters = iter(key for _, key in keys[:REPORTERS])
                headers = [{"Authorization": f"Bearer {next(reporters)}"} for _ in range(REPORTERS)]
                body = {
                    "version": "v1",
                    "components": ["weights"],
                    "category": "harmful_capability",
                    "severity": "critical",
                    "description": "uplift on a dangerous procedure",
                }
                turn = iter(range(REPORTERS))
                responses = at_once(
                    REPORTERS,
                    lambda c: c.post(
                        f"{url}/v1/models/{MODEL}/reports", json=body, headers=headers[next(turn)]
                    ),
                )
                assert Counter(r.status_code for r in responses) == {201: REPORTERS}
                assert datetime.now(UTC) < opens_at, "the reports took longer than STAGE_IN"

                # The stage's time passes; the scheduler (0.2 s passes) would have recorded it.
                wait_until(
                    lambda: datetime.now(UTC) > opens_at + timedelta(seconds=2), 60, "the stage"
                )
                outsider = {"Authorization": f"Bearer {keys[REPORTERS][1]}"}
                token = {"model": MODEL, "components": ["weights"]}
                refused = httpx.post(url + "/v1/tokens", json=token, headers=outsider)
                assert (refused.status_code, refused.json()["code"]) == (403, "component_held")
                anonymous = httpx.get(f"{url}/v1/files/{MODEL}/v1/w.bin")
                assert anonymous.status_code == 404  # a file closed to you is not known to you
                with sessions() as db:
                    open_stage = db.scalar(select(Stage).where(Stage.tier == "open"))
                    assert open_stage is not None
                    assert open_stage.transitioned_at is None
                    lifted_open = db.scalar(
                        select(func.count())
                        .select_from(Transition)
                        .where(Transition.kind == "lifted", Transition.tier == "open")
                    )
                    assert lifted_open == 0
                schedule = httpx.get(
                    f"{url}/v1/models/{MODEL}/releases/v1/components/weights/schedule",
                    headers=admin,
                ).json()
                assert schedule["held_by"] == "system:safety-policy"
                assert receiver.wait_for(lambda got: sorted(held_paths(got)) == ["all", "one"], 30)

                # The admin resumes: the stage takes effect at once and is recorded once.
                httpx.post(
                    f"{url}/v1/models/{MODEL}/releases/v1/components/weights/schedule/resume",
                    headers=admin,
                ).raise_for_status()
                assert httpx.get(f"{url}/v1/files/{MODEL}/v1/w.bin").content == DATA

                def recorded() -> int:
                    with sessions() as db:
                        return int(
                            db.scalar(
                                select(func.count())
                                .select_from(Transition)
                                .where(Transition.kind == "lifted", Transition.tier == "open")
                            )
                            or 0
                        )

                wait_until(lambda: recorded() == 1, 30, "the lift to be recorded")
                time.sleep(1)  # several scheduler passes on both processes
                assert recorded() == 1

            with sessions() as db:
                actions = Counter(
                    db.scalars(
                        select(AuditEvent.action).where(
                            AuditEvent.action.in_(
                                ["schedule.held", "safety.report.filed", "embargo.lifted"]
                            )
                        )
                    ).all()
                )
                held_event = db.scalar(
                    select(AuditEvent).where(AuditEvent.action == "schedule.held")
                )
                per_sub = Counter(
                    db.scalars(
                        select(WebhookDelivery.subscription_id).where(
                            WebhookDelivery.event_type == "component.held"
                        )
                    ).all()
                )
                chain = verify_chain(db)
        finally:
            engine.dispose()
        assert actions["schedule.held"] == 1
        assert actions["safety.report.filed"] == REPORTERS
        assert held_event is not None
        assert held_event.actor == "system:safety-policy"
        assert len(held_event.data["reports"]) == 3
        assert sorted(per_sub.values()) == [1, 1]
        got = receiver.snapshot()
        assert sorted(held_paths(got)) == ["all", "one"]
        held_deliveries = [
            json.loads(r.body) for r in got if json.loads(r.body)["type"] == "component.held"
        ]
        assert len({d["id"] for d in held_deliveries}) == 1
        assert held_deliveries[0]["data"]["reports"] == held_event.data["reports"]
        assert chain.ok, chain.reason
