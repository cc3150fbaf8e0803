"""Each console page's server time and SQL statement count, on PostgreSQL, with a small
catalogue and with a large one (1,000 models, 10,000 access requests, 100,000 audit
events). Pages are paginated, so the statement count must be the same at both sizes; the
time should grow little.

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
from app.models import AccessRequest, Component, Model, Release, Stage, User  # noqa: E402
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
]


def seed(engine: Engine, *, models: int, requests: int, events: int) -> str:
    """The catalogue, users with pending requests, and audit events; returns an admin key."""
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
        for start in range(0, events, 5000):
            audit.record_many(
                s,
                [
                    audit.NewEvent(
                        now,
                        f"user:{admin.id}",
                        "schedule.held" if i % 3 else "token.issued",
                        "component",
                        f"acme/m-{i % models:05d}@v1/weights",
                        data={"reason": "bench"},
                    )
                    for i in range(start, min(events, start + 5000))
                ],
            )
        s.commit()
    return key


def measure(
    url: str, *, models: int, requests: int, events: int, rounds: int
) -> dict[str, tuple[float, float, int]]:
    engine = make_engine(url)
    key = seed(engine, models=models, requests=requests, events=events)
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
            for path in PAGES:
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
                out[path] = (statistics.median(times), p99, len(statements))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    sizes = {"small": (10, 100, 1_000), "large": (1_000, 10_000, 100_000)}
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
        "signed in as an admin. Small: 10 models, 100 pending requests, 1,000 audit events; "
        "large: 1,000 models, 10,000 pending requests, 100,000 audit events. Times on the "
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
