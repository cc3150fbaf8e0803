"""Several ``weightgate serve`` replicas on one PostgreSQL database, in real time.

Each test makes its own PostgreSQL database, so these run (on PostgreSQL) in both passes of
the suite. A webhook receiver on 127.0.0.1 stands in for a subscriber.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select

from app.access.users import create_user_with_key
from app.db import make_engine, make_sessionmaker
from app.models import AuditEvent, Transition, WebhookDelivery
from app.webhooks.signing import verify_signature
from tests.fixtures.databases import fresh_database
from tests.fixtures.receiver import Receiver, fail_first, webhook_receiver
from tests.fixtures.servers import LiveServer, live_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

SECRET = "replica-test-signing-secret"


@dataclass
class Cluster:
    db_url: str
    engine: Engine
    servers: list[LiveServer]
    admin: dict[str, str]


@contextmanager
def cluster(tmp: Path, replicas: int, **settings: str) -> Iterator[Cluster]:
    with fresh_database(tmp, kind="postgresql", label="replicas") as db_url, ExitStack() as stack:
        engine = make_engine(db_url)
        stack.callback(engine.dispose)
        with make_sessionmaker(engine)() as db:
            _, key = create_user_with_key(
                db,
                email="ops@example.org",
                role="admin",
                name="ops",
                actor="system:test",
                now=datetime.now(UTC),
            )
            db.commit()
        common = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_STORAGE_URL": (tmp / "objects").as_uri(),
            "WEIGHTGATE_KEYS_DIR": str(tmp / "keys"),
            "WEIGHTGATE_SCHEDULER_ENABLED": "true",
            "WEIGHTGATE_SCHEDULER_INTERVAL": "0.2",
            "WEIGHTGATE_WEBHOOK_ALLOW_PRIVATE": "true",
            **settings,
        }
        servers = []
        # One after the other: each start gets the fixture's full timeout even on a busy
        # machine (replicas starting together are covered by the migration lock's tests).
        for i in range(replicas):
            home = tmp / f"replica-{i}"
            home.mkdir()
            env = {**common, "WEIGHTGATE_REPLICA_NAME": f"replica-{i}"}
            servers.append(stack.enter_context(live_server(env, tmp=home)))
        yield Cluster(db_url, engine, servers, {"Authorization": f"Bearer {key}"})


def ok(resp: httpx.Response, status: int = 200) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body: dict[str, object] = resp.json()
    return body


def subscribe(c: Cluster, receiver: Receiver) -> int:
    body = {"url": receiver.url, "events": ["embargo.lifted"], "secret": SECRET}
    created = ok(httpx.post(c.servers[0].url + "/v1/webhooks", json=body, headers=c.admin), 201)
    assert isinstance(created["id"], int)
    return created["id"]


def publish_lifting(c: Cluster, model: str, at: list[datetime]) -> None:
    """A release with one component per time in ``at``, each opening to everyone then.
    Calls go round-robin to the replicas: they share one database."""
    urls = [s.url for s in c.servers]
    with ExitStack() as stack:
        clients = [
            stack.enter_context(httpx.Client(base_url=u, headers=c.admin, timeout=30)) for u in urls
        ]
        ok(clients[0].post("/v1/models", json={"id": model, "license": "ok"}), 201)
        ok(
            clients[1 % len(clients)].post(f"/v1/models/{model}/releases", json={"version": "v1"}),
            201,
        )
        for i, when in enumerate(at):
            body = {"name": f"c{i:03d}", "schedule": [{"tier": "open", "at": when.isoformat()}]}
            client = clients[i % len(clients)]
            ok(client.post(f"/v1/models/{model}/releases/v1/components", json=body), 201)
        ok(
            clients[0].put(
                f"/v1/models/{model}/releases/v1/files/weights.bin",
                params={"component": "c000"},
                content=b"w" * 1024,
            ),
            201,
        )
        ok(clients[-1].post(f"/v1/models/{model}/releases/v1/publish"))


def scrape(server: LiveServer) -> dict[str, float]:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels
    }


def lifts_in_audit(c: Cluster) -> list[dict[str, object]]:
    body = ok(
        httpx.get(
            c.servers[1].url + "/v1/audit",
            params={"action": "embargo.lifted", "limit": 1000},
            headers=c.admin,
        )
    )
    items = body["items"]
    assert isinstance(items, list)
    return items


def assert_chain_intact(c: Cluster, server: LiveServer) -> None:
    verdict = ok(httpx.get(server.url + "/v1/audit/verify", headers=c.admin, timeout=30))
    assert verdict["ok"] is True, verdict


def test_three_replicas_record_and_announce_fifty_lifts_exactly_once(tmp_path: Path) -> None:
    with webhook_receiver() as receiver, cluster(tmp_path, 3) as c:
        subscribe(c, receiver)
        # Stages a few seconds out (time to publish first), all within two seconds.
        base = datetime.now(UTC) + timedelta(seconds=8)
        at = [base + timedelta(milliseconds=40 * i) for i in range(50)]
        publish_lifting(c, "acme/fifty", at)
        assert datetime.now(UTC) < base, "setup took longer than the margin before the lifts"

        assert receiver.wait_for(lambda got: len(got) >= 50, timeout=60), len(receiver.snapshot())
        time.sleep(2)  # several more scheduler and delivery passes: room for any duplicate

        got = receiver.snapshot()
        assert len(got) == 50
        assert all(r.status == 200 for r in got)
        ids = {r.event_id for r in got}
        assert len(ids) == 50
        payloads = [json.loads(r.body) for r in got]
        assert {p["data"]["component"] for p in payloads} == {f"c{i:03d}" for i in range(50)}
        assert {p["id"] for p in payloads} == ids
        for r in got:
            assert verify_signature(
                SECRET,
                timestamp=r.headers["x-weightgate-timestamp"],
                body=r.body,
                header=r.headers["x-weightgate-signature"],
                now=time.time(),
            )

        audited = lifts_in_audit(c)
        assert len(audited) == 50
        assert {e["target_id"] for e in audited} == {f"acme/fifty@v1/c{i:03d}" for i in range(50)}
        assert_chain_intact(c, c.servers[2])

        with make_sessionmaker(c.engine)() as db:
            rows = db.execute(select(Transition.at, Transition.recorded_at, Transition.recorded_by))
            lags = sorted((rec - when).total_seconds() for when, rec, _ in rows)
            by = db.scalars(select(Transition.recorded_by)).all()
            assert db.scalar(select(func.count()).select_from(WebhookDelivery)) == 50
            statuses = set(db.scalars(select(WebhookDelivery.status)))
        assert len(lags) == 50
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
        assert lags[0] >= 0
        assert p99 <= 2.0, lags
        assert statuses == {"delivered"}
        assert set(by) <= {"replica-0", "replica-1", "replica-2"}

        # Each replica's /metrics counts what it did; together, every lift once.
        scraped = [scrape(s) for s in c.servers]
        assert sum(m["weightgate_transitions_recorded_total"] for m in scraped) == 50
        assert sum(m["weightgate_scheduler_lag_seconds_count"] for m in scraped) == 50
        assert all(m["weightgate_outbox_backlog"] == 0 for m in scraped)
        assert all(m["weightgate_transitions_due"] == 0 for m in scraped)


def owner_of(port: int, servers: list[LiveServer]) -> LiveServer:
    """The replica whose TCP connection uses local ``port``."""
    for server in servers:
        for conn in psutil.Process(server.proc.pid).net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port:
                return server
    raise AssertionError(f"no replica owns local port {port}")


def test_a_replica_killed_while_holding_work_leaves_nothing_lost_or_twice(
    tmp_path: Path,
) -> None:
    settings = {
        "WEIGHTGATE_WEBHOOK_TIMEOUT_SECONDS": "5",
        "WEIGHTGATE_WEBHOOK_LEASE_SECONDS": "8",
        "WEIGHTGATE_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    }
    with webhook_receiver() as receiver, cluster(tmp_path, 3, **settings) as c:
        subscribe(c, receiver)
        base = datetime.now(UTC) + timedelta(seconds=6)
        publish_lifting(c, "acme/crash", [base + timedelta(milliseconds=10 * i) for i in range(20)])
        assert datetime.now(UTC) < base

        # The receiver stalls: whoever delivers first is caught with work in its hands.
        receiver.hold = threading.Event()
        receiver.hold.set()
        assert receiver.wait_for(lambda got: len(got) >= 1, timeout=30)
        first = receiver.snapshot()[0]
        victim = owner_of(first.client_port, c.servers)
        victim_ports = {
            conn.laddr.port
            for conn in psutil.Process(victim.proc.pid).net_connections(kind="tcp")
            if conn.laddr
        }
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(10)
        receiver.hold.clear()
        survivors = [s for s in c.servers if s is not victim]

        expected = 20
        assert receiver.wait_for(
            lambda got: (
                len({r.event_id for r in got if r.client_port not in victim_ports}) >= expected
            ),
            timeout=60,
        ), receiver.snapshot()
        time.sleep(2)

        got = receiver.snapshot()
        from_victim = [r for r in got if r.client_port in victim_ports]
        from_survivors = [r for r in got if r.client_port not in victim_ports]
        assert first in from_victim
        # Every event was delivered by a survivor exactly once, with the same idempotency id
        # the dead replica had used for the ones it held.
        assert len(from_survivors) == expected
        assert len({r.event_id for r in from_survivors}) == expected
        assert all(r.status == 200 for r in from_survivors)
        assert {r.event_id for r in from_victim} <= {r.event_id for r in from_survivors}

        with make_sessionmaker(c.engine)() as db:
            assert db.scalar(select(func.count()).select_from(Transition)) == expected
            assert db.scalar(select(func.count(func.distinct(Transition.stage_id)))) == expected
            lifted = db.scalars(
                select(AuditEvent.target_id).where(AuditEvent.action == "embargo.lifted")
            ).all()
            assert sorted(lifted) == sorted(f"acme/crash@v1/c{i:03d}" for i in range(expected))
            statuses = db.scalars(select(WebhookDelivery.status)).all()
        assert statuses == ["delivered"] * expected
        assert_chain_intact(c, survivors[0])


def test_a_failing_receiver_gets_the_same_delivery_again_once_it_recovers(
    tmp_path: Path,
) -> None:
    settings = {"WEIGHTGATE_WEBHOOK_RETRY_BASE_SECONDS": "0.3"}
    with webhook_receiver(fail_first(2)) as receiver, cluster(tmp_path, 1, **settings) as c:
        hook = subscribe(c, receiver)
        publish_lifting(c, "acme/retry", [datetime.now(UTC) + timedelta(seconds=2)])
        assert receiver.wait_for(lambda got: any(r.status == 200 for r in got), timeout=30)
        got = receiver.snapshot()
        assert [r.status for r in got] == [500, 500, 200]
        assert len({r.event_id for r in got}) == 1
        # Retries wait longer each time (0.3 s base, doubling, with jitter).
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        assert gaps[0] >= 0.1
        assert gaps[1] >= 0.25

        listed = ok(
            httpx.get(
                f"{c.servers[0].url}/v1/webhooks/{hook}/deliveries", headers=c.admin, timeout=10
            )
        )
        items = listed["items"]
        assert isinstance(items, list)
        (delivery,) = items
        assert delivery["status"] == "delivered"
        assert delivery["event_id"] == got[0].event_id
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
