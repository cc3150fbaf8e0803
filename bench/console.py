"""Each console page's server time and SQL statement count, on PostgreSQL, with a small
catalogue and with a large one (1,000 models, 10,000 access requests and users, 100
partners, 100,000 audit events, 10,000 webhook deliveries). Pages are paginated, so the
statement count must be the same at both sizes; the time should grow little.

The app runs in process (``TestClient``, no network: the figure is the server's work,
rendering included); statements are counted on the engine.

    .venv/bin/python bench/console.py            # PostgreSQL (127.0.0.1:5432)
    .venv/bin/python bench/console.py --db sqlite

Writes its section of bench/RESULTS.md between ``<!-- bench:console -->`` markers.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import audit  # noqa: E402
from app.access.apikeys import create_api_key  # noqa: E402
from app.clock import SystemClock  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import (  # noqa: E402
    AccessRequest,
    Component,
    Model,
    Partner,
    PartnerAgreement,
    Release,
    Stage,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from app.settings import Settings  # noqa: E402
from bench.results import machine, write_section  # noqa: E402
from tests.fixtures.databases import fresh_database  # noqa: E402
from tests.fixtures.statements import count_statements  # noqa: E402

PAGES = [
    "/console/upcoming",
    "/console/upcoming?days=30",
    "/console/models",
    "/console/models/acme/m-00007",
    "/console/models/acme/m-00007/releases/v1",
    "/console/requests",
    "/console/requests?limit=500",
    "/console/requests?answer=oslo&email_domain=uni3.example",
    "/console/audit",
    "/console/audit?model=acme/m-00007&action=schedule.*",
    "/console/users",
    "/console/users?q=uni3",
    "/console/users/{user}",
    "/console/partners",
    "/console/partners/{partner}",
    "/console/webhooks",
    "/console/webhooks/{webhook}",
    "/console/webhooks/{webhook}?status=failed",
]


def seed(engine: Engine, *, models: int, requests: int, events: int) -> dict[str, str]:
    """The catalogue, users with pending requests, partners, a webhook's deliveries and
    audit events; returns an admin key and the ids the pages by id show."""
    now = datetime.now(UTC)
    with Session(engine) as s:
        s.execute(
            insert(Model),
            [
                {
                    "namespace": "acme",
                    "name": f"m-{i:05d}",
                    "display_name": f"Model {i}",
                    "license": "ok",
                    "license_sha256": "0" * 64,
                    "request_fields": [],
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(models)
            ],
        )
        model_ids = s.scalars(select(Model.id).order_by(Model.id)).all()
        s.execute(
            insert(Release),
            [
                {
                    "model_id": m,
                    "version": "v1",
                    "status": "published",
                    "revision": f"{m:040x}",
                    "created_at": now,
                    "published_at": now,
                }
                for m in model_ids
            ],
        )
        rel_ids = s.scalars(select(Release.id).order_by(Release.id)).all()
        s.execute(
            insert(Component),
            [
                {"release_id": r, "name": n, "created_at": now}
                for r in rel_ids
                for n in ("weights", "config")
            ],
        )
        comps = s.execute(select(Component.id, Component.name).order_by(Component.id)).all()
        s.execute(
            insert(Stage),
            [
                {
                    "component_id": c,
                    "tier": tier,
                    "at": now + timedelta(hours=(c * 7) % (40 * 24) + hours),
                    "created_at": now,
                }
                for c, name in comps
                for tier, hours in (("research", 1), ("open", 24 * 45))
            ],
        )
        s.execute(
            insert(User),
            [
                {
                    "email": f"u{i}@uni{i % 10}.example",
                    "name": "",
                    "role": "researcher",
                    "created_at": now,
                }
                for i in range(requests)
            ],
        )
        users = s.scalars(select(User.id).order_by(User.id)).all()
        s.execute(
            insert(AccessRequest),
            [
                {
                    "user_id": u,
                    "model_id": model_ids[i % len(model_ids)],
                    "status": "pending",
                    "answers": {"affiliation": "Univ of Oslo" if i % 7 == 0 else "A lab"},
                    "license_sha256": "0" * 64,
                    "created_at": now - timedelta(minutes=i),
                }
                for i, u in enumerate(users)
            ],
        )
        admin = User(email="admin@example.org", name="", role="admin", created_at=now)
        s.add(admin)
        s.flush()
        _, key = create_api_key(s, user=admin, now=now)
        partner_ids = _seed_partners(s, model_ids, count=max(1, models // 10), now=now)
        webhook = _seed_deliveries(s, count=max(1, events // 10), now=now)
        # One event in 20 is about the first user or the first partner (their trails).
        about: list[tuple[str, str | int]] = [("user", users[0]), ("partner", partner_ids[0])]

        def target(i: int) -> tuple[str, str | int]:
            if i % 20 == 0:
                return about[i % 2]
            return ("component", f"acme/m-{i % models:05d}@v1/weights")

        for start in range(0, events, 5000):
            audit.record_many(
                s,
                [
                    audit.NewEvent(
                        now,
                        f"user:{admin.id}",
                        "schedule.held" if i % 3 else "token.issued",
                        target(i)[0],
                        target(i)[1],
                        data={"reason": "bench"},
                    )
                    for i in range(start, min(events, start + 5000))
                ],
            )
        s.commit()
    return {"key": key, "user": str(users[0]), "partner": str(partner_ids[0]), "webhook": webhook}


def _seed_partners(s: Session, model_ids: Sequence[int], *, count: int, now: datetime) -> list[int]:
    s.execute(
        insert(Partner),
        [
            {
                "name": f"Partner {i}",
                "client_id": f"wgc_{i:024x}",
                "secret_hash": "0" * 64,
                "created_at": now,
            }
            for i in range(count)
        ],
    )
    ids = list(s.scalars(select(Partner.id).order_by(Partner.id)).all())
    s.execute(
        insert(PartnerAgreement),
        [
            {"partner_id": p, "model_id": model_ids[(p + k) % len(model_ids)], "created_at": now}
            for p in ids
            for k in range(3)
        ],
    )
    return ids


def _seed_deliveries(s: Session, *, count: int, now: datetime) -> str:
    """One subscription with ``count`` deliveries, each with two attempts (a 503, then 200
    or a timeout), a third of them failed."""
    sub = WebhookSubscription(
        url="https://hooks.example.org/wg", events=["*"], secret="s" * 32, created_at=now
    )
    s.add(sub)
    s.flush()
    s.execute(
        insert(WebhookDelivery),
        [
            {
                "subscription_id": sub.id,
                "event_id": f"evt_{i:032x}",
                "event_type": "embargo.lifted",
                "payload": {"id": f"evt_{i:032x}", "type": "embargo.lifted", "data": {"i": i}},
                "status": "failed" if i % 3 == 0 else "delivered",
                "attempts": 2,
                "next_attempt_at": now,
                "last_error": "gave up: HTTP 503" if i % 3 == 0 else None,
                "created_at": now - timedelta(minutes=i),
                "delivered_at": None if i % 3 == 0 else now,
            }
            for i in range(count)
        ],
    )
    deliveries = s.scalars(select(WebhookDelivery.id)).all()
    s.execute(
        insert(WebhookAttempt),
        [
            {"delivery_id": d, "at": now, "status_code": code, "duration_ms": 12}
            for d in deliveries
            for code in (503, 200)
        ],
    )
    return str(sub.id)


def measure(
    url: str, *, models: int, requests: int, events: int, rounds: int
) -> dict[str, tuple[float, float, int]]:
    engine = make_engine(url)
    ids = seed(engine, models=models, requests=requests, events=events)
    key = ids.pop("key")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            environment="test",
            data_dir=Path(tmp),
            database_url=url,
            scheduler_enabled=False,
            log_level="WARNING",
            _env_file=None,
        )
        app = create_app(settings, clock=SystemClock(), engine=engine, run_background=False)
        out = {}
        with TestClient(app) as client:
            page = client.get("/console/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            client.post(
                "/console/sign-in",
                data={"api_key": key, "csrf_token": token},
                headers={"Origin": "http://testserver"},
            )
            for template in PAGES:
                path = template.format(**ids)
                for _ in range(3):  # warm up
                    assert client.get(path).status_code == 200, path
                times = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    with count_statements(engine) as statements:
                        r = client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert r.status_code == 200, (path, r.status_code)
                times.sort()
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                out[template] = (statistics.median(times), p99, len(statements))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    sizes = {"small": (10, 100, 1_000), "large": (1_000, 10_000, 100_000)}  # partners: m / 10
    results = {}
    for label, (m, r, e) in sizes.items():
        with (
            tempfile.TemporaryDirectory() as tmp,
            fresh_database(Path(tmp), kind=args.db, label="bench") as url,
        ):
            print(f"seeding {label}: {m} models, {r} requests, {e} audit events", flush=True)
            results[label] = measure(url, models=m, requests=r, events=e, rounds=args.rounds)
    flag = " --db sqlite" if args.db == "sqlite" else ""
    lines = [
        f"## Console pages (`python bench/console.py{flag}`)",
        "",
        f"{machine()} · {args.db} · in process (TestClient), {args.rounds} requests per page, "
        "signed in as an admin. Small: 10 models, 100 pending requests (and users), 1 partner, "
        "1,000 audit events, 100 webhook deliveries; large: 1,000 models, 10,000 pending "
        "requests (and users), 100 partners, 100,000 audit events, 10,000 webhook deliveries "
        "(each with two attempts). Times on the "
        "shared 2-core machine vary from run to run with what else runs; the statement counts "
        "do not, and they are the same at both sizes: every page is paginated.",
        "",
        "| page | p50 small | p50 large | p99 large | large / small "
        "| SQL statements small → large |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for path in PAGES:
        s50, _, sn = results["small"][path]
        l50, l99, ln = results["large"][path]
        lines.append(
            f"| `{path}` | {s50:.1f} ms | {l50:.1f} ms | {l99:.1f} ms | {l50 / s50:.2f}x "
            f"| {sn} → {ln} |"
        )
    text = "\n".join(lines)
    print(text)
    write_section("console" if args.db == "postgresql" else "console-sqlite", text)


if __name__ == "__main__":
    main()
