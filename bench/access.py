"""Does the manifest's cost grow with the data? Manifest calls at 1x and 10x the grants,
users, models and partner agreements, side by side, on PostgreSQL (``--db sqlite`` too).

The access rule runs on every catalogue read, so its lookups must be indexed single-row
reads: the figure that matters is the 10x/1x ratio of the per-call cost (≈ 1.0 means
independent of the data), and the number of SQL statements per call (must be equal).

    .venv/bin/python bench/access.py            # PostgreSQL on 127.0.0.1:5432
    .venv/bin/python bench/access.py --db sqlite

Writes its section of bench/RESULTS.md between ``<!-- bench:access -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, event, insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from app.access.apikeys import authenticate_api_key, create_api_key  # noqa: E402
from app.catalogue.service import manifest  # noqa: E402
from app.db import make_engine, make_sessionmaker  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import (  # noqa: E402
    Component,
    Grant,
    Model,
    Partner,
    PartnerAgreement,
    Release,
    ReleaseFile,
    Stage,
    StoredObject,
    User,
)
from app.policy.principals import ANONYMOUS, Principal  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.storage.filesystem import FilesystemStore  # noqa: E402
from bench.results import write_section  # noqa: E402
from tests.fixtures.databases import fresh_database  # noqa: E402

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=30)
SHA = "ab" * 32
MANIFEST = "/v1/models/acme/target/releases/v1/manifest"


class Result(NamedTuple):
    service_median: float
    service_p90: float
    http_median: float
    http_p90: float
    statements: int


BASE = {"models": 200, "users": 2_000, "grants": 6_000, "partners": 20, "agreements": 10}


def _chunks(rows: list[dict[str, Any]], size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def seed(engine: Engine, factor: int) -> dict[str, str]:
    """Filler models/users/grants/agreements at ``factor`` x, plus the measured model; returns
    the API keys / partner of the callers measured."""
    rng = random.Random(factor)
    n_models, n_users = BASE["models"] * factor, BASE["users"] * factor
    n_grants, n_partners = BASE["grants"] * factor, BASE["partners"] * factor
    with make_sessionmaker(engine)() as s:
        s.add(StoredObject(sha256=SHA, size=1, created_at=NOW))
        s.flush()
        s.execute(
            insert(Model),
            [
                {
                    "namespace": "filler",
                    "name": f"m{i}",
                    "license_sha256": "0" * 64,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "request_fields": [],
                }
                for i in range(n_models)
            ],
        )
        model_ids = list(s.scalars(select(Model.id)))
        s.execute(
            insert(Release),
            [
                {
                    "model_id": m,
                    "version": "v1",
                    "status": "published",
                    "revision": f"{m:040x}",
                    "created_at": NOW,
                    "published_at": NOW,
                }
                for m in model_ids
            ],
        )
        release_ids = list(s.scalars(select(Release.id)))
        s.execute(
            insert(Component),
            [{"release_id": r, "name": "weights", "created_at": NOW} for r in release_ids],
        )
        comps = list(s.execute(select(Component.id, Component.release_id)))
        for chunk in _chunks(
            [
                {"component_id": c, "tier": t, "at": at, "created_at": NOW}
                for c, _ in comps
                for t, at in (("research", PAST), ("open", FUTURE))
            ]
        ):
            s.execute(insert(Stage), chunk)
        for chunk in _chunks(
            [
                {
                    "release_id": r,
                    "component_id": c,
                    "path": "w.bin",
                    "size": 1,
                    "sha256": SHA,
                    "created_at": NOW,
                }
                for c, r in comps
            ]
        ):
            s.execute(insert(ReleaseFile), chunk)
        for chunk in _chunks(
            [
                {"email": f"u{i}@example.org", "name": "", "role": "researcher", "created_at": NOW}
                for i in range(n_users)
            ]
        ):
            s.execute(insert(User), chunk)
        user_ids = list(s.scalars(select(User.id)))
        pairs: set[tuple[int, int]] = set()
        while len(pairs) < n_grants:
            pairs.add((rng.choice(user_ids), rng.choice(model_ids)))
        for chunk in _chunks([{"user_id": u, "model_id": m, "created_at": NOW} for u, m in pairs]):
            s.execute(insert(Grant), chunk)
        s.execute(
            insert(Partner),
            [
                {
                    "name": f"p{i}",
                    "client_id": f"wgc_{i}",
                    "secret_hash": "0" * 64,
                    "created_at": NOW,
                }
                for i in range(n_partners)
            ],
        )
        partner_ids = list(s.scalars(select(Partner.id)))
        s.execute(
            insert(PartnerAgreement),
            [
                {"partner_id": p, "model_id": m, "created_at": NOW}
                for p in partner_ids
                for m in rng.sample(model_ids, BASE["agreements"])
            ],
        )

        # The measured model: internal, partner, research and open components, 40 files.
        target = Model(
            namespace="acme", name="target", license_sha256="0" * 64, created_at=NOW, updated_at=NOW
        )
        s.add(target)
        s.flush()
        rel = Release(
            model_id=target.id,
            version="v1",
            status="published",
            revision="f" * 40,
            created_at=NOW,
            published_at=NOW,
        )
        s.add(rel)
        s.flush()
        for name, stages in {
            "internal": [],
            "partner": [("partner", PAST), ("open", FUTURE)],
            "research": [("partner", PAST - timedelta(days=1)), ("research", PAST)],
            "open": [("open", PAST)],
        }.items():
            comp = Component(release_id=rel.id, name=name, created_at=NOW)
            s.add(comp)
            s.flush()
            for tier, at in stages:
                s.add(Stage(component_id=comp.id, tier=tier, at=at, created_at=NOW))
            for i in range(10):
                s.add(
                    ReleaseFile(
                        release_id=rel.id,
                        component_id=comp.id,
                        path=f"{name}/f{i}.bin",
                        size=1,
                        sha256=SHA,
                        created_at=NOW,
                    )
                )
        researcher = User(email="measured@example.org", role="researcher", created_at=NOW)
        admin = User(email="admin@example.org", role="admin", created_at=NOW)
        s.add_all([researcher, admin])
        s.flush()
        s.add(Grant(user_id=researcher.id, model_id=target.id, created_at=NOW))
        _, r_key = create_api_key(s, user=researcher, now=NOW)
        _, a_key = create_api_key(s, user=admin, now=NOW)
        s.commit()
    return {"researcher": r_key, "admin": a_key}


@contextmanager
def statements(engine: Engine) -> Iterator[list[int]]:
    box = [0]

    def count(*_: Any) -> None:
        box[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield box
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _principal(session: Session, key: str | None) -> Principal:
    if key is None:
        return ANONYMOUS
    user = authenticate_api_key(session, key, now=datetime.now(UTC))
    assert user is not None
    return Principal(kind="user", id=user.id, role=user.role, name=user.email)


@dataclass
class Setup:
    """One database at one scale, and one manifest call against it (service or HTTP)."""

    engine: Engine
    factory: sessionmaker[Session]
    client: TestClient
    keys: dict[str, str]

    def service_call(self, key: str | None) -> None:
        with self.factory() as session:
            manifest(
                session,
                principal=_principal(session, key),
                namespace="acme",
                name="target",
                version="v1",
                now=datetime.now(UTC),
            )
            session.commit()

    def http_call(self, key: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        assert self.client.get(MANIFEST, headers=headers).status_code == 200

    def statements_per_call(self, key: str | None) -> int:
        with statements(self.engine) as n:
            self.http_call(key)
        return n[0]


@contextmanager
def setup(url: str, factor: int, tmp: Path) -> Iterator[Setup]:
    engine = make_engine(url)
    t = time.perf_counter()
    keys = seed(engine, factor)
    print(f"seeded {factor}x in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    settings = Settings(
        environment="test",
        data_dir=tmp / "var",
        database_url=url,
        scheduler_enabled=False,
        log_level="WARNING",
        _env_file=None,
    )
    app = create_app(
        settings, store=FilesystemStore(tmp / "objects"), engine=engine, run_background=False
    )
    try:
        with TestClient(app) as client:
            yield Setup(engine, make_sessionmaker(engine), client, keys)
    finally:
        engine.dispose()


def _median_p90(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


CALLERS = {"anonymous": None, "researcher (granted)": "researcher", "admin": "admin"}


def measure(small: Setup, large: Setup, calls: int) -> dict[str, tuple[Result, Result]]:
    """Per caller, 1x and 10x side by side. Calls alternate between the two databases so
    both see the same load from whatever else runs on the machine."""
    out = {}
    sides = (small, large)
    for name, who in CALLERS.items():
        keys = [None if who is None else side.keys[who] for side in sides]
        for _ in range(50):  # warm pools and statement caches
            for side, key in zip(sides, keys, strict=True):
                side.service_call(key)
                side.http_call(key)
        service: list[list[float]] = [[], []]
        http: list[list[float]] = [[], []]
        for i in range(calls):
            for k, (side, key) in enumerate(zip(sides, keys, strict=True)):
                t = time.perf_counter()
                side.service_call(key)
                service[k].append((time.perf_counter() - t) * 1e6)
                if i % 3 == 0:
                    t = time.perf_counter()
                    side.http_call(key)
                    http[k].append((time.perf_counter() - t) * 1e6)
        small_r, large_r = (
            Result(*_median_p90(service[k]), *_median_p90(http[k]), side.statements_per_call(key))
            for k, (side, key) in enumerate(zip(sides, keys, strict=True))
        )
        out[name] = (small_r, large_r)
    return out


def report(db: str, calls: int, results: dict[str, tuple[Result, Result]]) -> str:
    def size(f: int) -> str:
        return (
            f"{BASE['models'] * f} models, {BASE['users'] * f} users, {BASE['grants'] * f} "
            f"grants, {BASE['partners'] * f} partners x {BASE['agreements']} agreements"
        )

    lines = [
        "## Access rule: manifest cost vs. data size (`bench/access.py`)",
        "",
        f"{db}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared with other work; medians of {calls} service calls and "
        f"{(calls + 2) // 3} HTTP calls per caller, 1x and 10x calls interleaved; run "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- 1x: {size(1)}",
        f"- 10x: {size(10)}",
        "",
        "| caller | service 1x µs | service 10x µs | **10x/1x** | HTTP 1x µs | HTTP 10x µs "
        "| **10x/1x** | SQL/call 1x | SQL/call 10x |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (a, b) in results.items():
        lines.append(
            f"| {name} | {a.service_median:.0f} | {b.service_median:.0f} "
            f"| **{b.service_median / a.service_median:.2f}** | {a.http_median:.0f} "
            f"| {b.http_median:.0f} | **{b.http_median / a.http_median:.2f}** "
            f"| {a.statements} | {b.statements} |"
        )
    lines += [
        "",
        "*service*: API-key authentication, the access rule and the manifest (40 files, four",
        "components), one database session per call, no HTTP. *HTTP*: the same call through",
        "`GET .../manifest` with Starlette's in-process TestClient.",
        "",
        "A ratio near 1.00 and equal statement counts mean the manifest's cost does not grow",
        "with the number of grants, users, models or agreements: every access-rule lookup is",
        "an indexed single-row read (API key by hash, model by name, grant by user+model,",
        "agreement by partner+model), and the release's own rows are read by release id.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with (
            fresh_database(tmp, kind=args.db, label="bench1") as url1,
            fresh_database(tmp, kind=args.db, label="bench10") as url10,
            setup(url1, 1, tmp / "x1") as small,
            setup(url10, 10, tmp / "x10") as large,
        ):
            results = measure(small, large, args.calls)
    text = report(args.db, args.calls, results)
    print(text)
    if not args.no_write:
        write_section("access", text)


if __name__ == "__main__":
    main()
