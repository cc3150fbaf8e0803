"""Does an unannounced model answer like a missing one? Median latency of the same anonymous
requests for a model that exists but is not announced yet and for one that does not exist,
against a live server (uvicorn) on PostgreSQL (``--db sqlite`` too). Both must be 404s with
the same body, and their times must not tell them apart (app/disclosure.py): the figure that
matters is the difference of the medians, next to their spread.

    .venv/bin/python bench/disclosure.py
    .venv/bin/python bench/disclosure.py --db sqlite

Writes its section of bench/RESULTS.md between ``<!-- bench:disclosure -->`` markers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import machine, write_section  # noqa: E402
from tests.fixtures.databases import fresh_database  # noqa: E402
from tests.fixtures.servers import create_user, live_server, publish_over_http  # noqa: E402

ROUTES = ["/v1/models/{m}", "/v1/models/{m}/releases/v1/manifest", "/api/models/{m}"]


def publish_unannounced(url: str, admin_key: str) -> None:
    """acme/secret v1: published, its only component internal until next week."""
    soon = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    publish_over_http(
        url,
        admin_key,
        "acme/secret",
        components={"w": [("open", soon)]},
        files={"w.bin": ("w", b"w" * 1024)},
    )


def timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    r = client.get(path)
    elapsed = time.perf_counter() - started
    assert r.status_code == 404, (path, r.status_code)
    return elapsed * 1000


def measure(url: str, calls: int) -> list[tuple[str, float, float, float]]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for route in ROUTES:
            hidden, missing = route.format(m="acme/secret"), route.format(m="acme/missing")
            for _ in range(20):  # warm up: connections, prepared statements, caches
                timed(client, hidden), timed(client, missing)
            a: list[float] = []
            b: list[float] = []
            for _ in range(calls):  # interleaved, so drift hits both alike
                a.append(timed(client, hidden))
                b.append(timed(client, missing))
            spread = statistics.quantiles(a + b, n=4)
            out.append((route, statistics.median(a), statistics.median(b), spread[2] - spread[0]))
    return out


def report(db: str, calls: int, rows: list[tuple[str, float, float, float]]) -> str:
    lines = [
        "## Disclosure: an unannounced model vs a missing one (`bench/disclosure.py`)",
        "",
        machine(),
        "",
        f"Anonymous GETs against `weightgate serve` on {db}, {calls} of each, interleaved; "
        "median latency in ms (both answers are the same 404).",
        "",
        "| route | unannounced | missing | difference | interquartile range |",
        "|---|---|---|---|---|",
    ]
    for route, hidden, missing, iqr in rows:
        lines.append(
            f"| `{route}` | {hidden:.2f} | {missing:.2f} | {hidden - missing:+.2f} | {iqr:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with fresh_database(tmp, kind=args.db, label="disclosure") as db_url:
            env = {"WEIGHTGATE_DATABASE_URL": db_url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}
            with live_server(env, tmp=tmp) as server:
                publish_unannounced(server.url, create_user(server, "ops@example.org", "admin"))
                rows = measure(server.url, args.calls)
    text = report(args.db, args.calls, rows)
    print(text)
    if not args.no_write:
        write_section("disclosure", text)


if __name__ == "__main__":
    main()
