"""Release day: how does weightgate hold up when a component opens to researchers and they
all arrive through ``huggingface_hub`` at once, against a stub that only replays answers?

Starts moto's S3 server, a fresh PostgreSQL database and ``weightgate serve --workers 2``
(S3 store, redirect mode), publishes a release of N files whose component opens to the
research tier at an instant T, and records the requests the real
``huggingface_hub.snapshot_download`` sends for an identical release that is already open
(model info, tree, then a HEAD and a GET of ``/resolve`` per file, the GET followed to the
presigned S3 URL). At T, C simulated clients (C researchers' keys shared ten to a key) start
within the spread (10 s) and replay that sequence — the model's name and revision swapped
in — each on its own keep-alive connection, from a load generator in its own process.

The same clients then replay it against bench/stub_hub.py (the same routes answered with
responses captured from weightgate, 302s to the same presigned URLs, two uvicorn workers):
the floor. Reports the time until every client has every file, requests per second, p50/p99
per request kind, errors (anything but 200 / 302, or a dropped connection), server +
database CPU per file delivered, and weightgate's time as a share of the floor's.

    python bench/stampede.py [--clients 300] [--files 20] [--file-kib 16] [--spread 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.models import Grant, Model, User  # noqa: E402
from bench.results import machine, write_section  # noqa: E402
from tests.cli.tcpproxy import tcp_proxy  # noqa: E402
from tests.fixtures.databases import fresh_database  # noqa: E402
from tests.fixtures.servers import (  # noqa: E402
    AWS_TEST_ENV,
    VENV_BIN,
    create_user,
    free_port,
    live_server,
    moto_server,
    publish_over_http,
    stop,
    wait_http,
)

for _k, _v in AWS_TEST_ENV.items():
    os.environ.setdefault(_k, _v)

PROBE = "bench/probe"
MODEL = "bench/stampede"
CLIENTS_PER_KEY = 10
KINDS = ("model info", "tree", "HEAD /resolve", "GET /resolve (302)", "GET S3 object")


def release_files(n: int, size: int) -> dict[str, bytes]:
    names = ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]
    shards = max(0, n - len(names))
    names += [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    return {p: os.urandom(size) for p in names[:n]}


# -- the request sequence of the real client ------------------------------------------------


def record_snapshot(url: str, key: str, cache: Path) -> list[tuple[str, str]]:
    """The (method, target) requests ``snapshot_download`` sends to weightgate, in order (one
    worker thread, so the order is the client's own)."""
    from huggingface_hub import snapshot_download

    with tcp_proxy(url) as proxy:
        snapshot_download(PROBE, endpoint=proxy.url, token=key, cache_dir=str(cache), max_workers=1)
        return [(r.method, r.target) for r in proxy.requests]


def kind_of(method: str, target: str) -> str:
    if "/resolve/" in target:
        return "HEAD /resolve" if method == "HEAD" else "GET /resolve (302)"
    return "tree" if "/tree/" in target else "model info"


def revision(url: str, key: str, repo: str) -> str:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        r = http.get(f"/api/models/{repo}/revision/main")
        r.raise_for_status()
        return str(r.json()["sha"])


def canned(
    url: str, key: str, probe: list[tuple[str, str]], swap: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """weightgate's answers to the probe's sequence, keyed by the stampede's targets."""
    out: dict[str, dict[str, Any]] = {
        "GET /healthz": {"status": 200, "headers": {"content-length": "2"}, "body": "ok"}
    }
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        for method, target in probe:
            r = http.request(method, target)
            headers = {
                k: v
                for k, v in r.headers.items()
                if k not in ("date", "server", "content-length", "transfer-encoding")
            }
            length = r.headers.get("content-length", "0") if method == "HEAD" else len(r.content)
            headers["content-length"] = str(length)
            out[f"{method} {swapped(target, swap)}"] = {
                "status": r.status_code,
                "headers": headers,
                "body": r.content.decode("latin-1"),
            }
    return out


def swapped(target: str, swap: dict[str, str]) -> str:
    for a, b in swap.items():
        target = target.replace(a, b)
    return target


# -- the simulated clients (a process of their own) -----------------------------------------


class _Conn:
    """One keep-alive HTTP/1.1 connection, re-opened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str]]:
        """Send and read one exchange. A kept-alive connection the server closed while
        idle (uvicorn's keep-alive timeout, 5 s, passes while a client waits on S3) is
        re-opened and the request sent again once, as real clients do for idempotent
        requests; a failure on a fresh connection is an error."""
        reused = self.writer is not None
        try:
            return await self._exchange(method, target, headers)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            partial = getattr(e, "partial", b"")
            if not reused or partial:
                raise
        return await self._exchange(method, target, headers)

    async def _exchange(
        self, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        try:
            self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        status = int(head[9:12])
        fields: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name:
                fields[name.strip().lower()] = value.strip()
        if method != "HEAD" and status not in (204, 304):
            if "content-length" in fields:
                await self.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    await self.reader.readexactly(size + 2)
                await self.reader.readuntil(b"\r\n")
            else:
                await self.reader.read()
                fields["connection"] = "close"
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, fields

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Stampede:
    seconds: float  # from the first client's start until the last client has every file
    files: int  # files delivered (S3 objects received whole)
    requests: int
    latencies: dict[str, list[float]]
    statuses: dict[str, dict[int, int]]
    errors: dict[str, int]
    client_cpu: float
    server_cpu: float = 0.0
    db_cpu: float = 0.0

    def percentile(self, kind: str, p: float) -> float:
        xs = sorted(self.latencies.get(kind, []))
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else float("nan")


async def _client(
    i: int,
    url: str,
    sequence: list[tuple[str, str]],
    key: str,
    start: float,
    spread: float,
    out: dict[str, Any],
) -> None:
    await asyncio.sleep(max(0.0, start + spread * i / out["clients"] - time.time()))
    parts = urlsplit(url)
    conn = _Conn(parts.hostname or "127.0.0.1", parts.port or 80)
    stores: dict[tuple[str, int], _Conn] = {}
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "huggingface_hub/stampede"}
    for method, target in sequence:
        kind = kind_of(method, target)
        t = time.perf_counter()
        try:
            status, fields = await conn.request(method, target, headers)
        except (OSError, asyncio.IncompleteReadError) as e:
            out["errors"][f"{kind}: {type(e).__name__}"] += 1
            continue
        out["latencies"][kind].append(time.perf_counter() - t)
        out["statuses"][kind][status] += 1
        out["requests"] += 1
        expected = 302 if kind == "GET /resolve (302)" else 200
        if status != expected:
            out["errors"][f"{kind}: HTTP {status}"] += 1
            continue
        if status == 302:
            loc = urlsplit(fields["location"])
            store = stores.setdefault(
                (loc.hostname or "", loc.port or 80), _Conn(loc.hostname or "", loc.port or 80)
            )
            t = time.perf_counter()
            try:
                got, _ = await store.request("GET", f"{loc.path}?{loc.query}", {})
            except (OSError, asyncio.IncompleteReadError) as e:
                out["errors"][f"GET S3 object: {type(e).__name__}"] += 1
                continue
            out["latencies"]["GET S3 object"].append(time.perf_counter() - t)
            out["statuses"]["GET S3 object"][got] += 1
            if got == 200:
                out["files"] += 1
            else:
                out["errors"][f"GET S3 object: HTTP {got}"] += 1
    out["finished"].append(time.time())
    conn.close()
    for c in stores.values():
        c.close()


async def _stampede(
    url: str,
    sequence: list[tuple[str, str]],
    keys: list[str],
    clients: int,
    start: float,
    spread: float,
) -> Stampede:
    out: dict[str, Any] = {
        "clients": clients,
        "latencies": defaultdict(list),
        "statuses": defaultdict(Counter),
        "errors": Counter(),
        "requests": 0,
        "files": 0,
        "finished": [],
    }
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(
        *(
            _client(i, url, sequence, keys[i % len(keys)], start, spread, out)
            for i in range(clients)
        )
    )
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return Stampede(
        seconds=max(out["finished"]) - start,
        files=out["files"],
        requests=out["requests"],
        latencies=dict(out["latencies"]),
        statuses={k: dict(v) for k, v in out["statuses"].items()},
        errors=dict(out["errors"]),
        client_cpu=(cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
    )


def _child(args: tuple[Any, ...], out: multiprocessing.Queue[Any]) -> None:
    import uvloop

    # A plain dict: this module is __main__ in the parent and __mp_main__ here.
    out.put(asdict(uvloop.run(_stampede(*args))))


def run_stampede(
    url: str,
    sequence: list[tuple[str, str]],
    keys: list[str],
    *,
    clients: int,
    start: float,
    spread: float,
) -> Stampede:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=((url, sequence, keys, clients, start, spread), queue))
    proc.start()
    result = Stampede(**queue.get(timeout=3600))
    proc.join(30)
    return result


# -- CPU accounting ---------------------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn's workers)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def backend_cpu(db_url: str) -> dict[int, float]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            pids = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
            out = {}
            for pid in pids:
                try:
                    t = psutil.Process(int(pid)).cpu_times()
                except psutil.NoSuchProcess:
                    continue
                out[int(pid)] = t.user + t.system
            return out
    finally:
        engine.dispose()


def measured(pid: int, db_url: str | None, run: Any) -> tuple[Stampede, float, float]:
    srv0 = tree_cpu(pid)
    db0 = backend_cpu(db_url) if db_url else {}
    result: Stampede = run()
    srv1 = tree_cpu(pid)
    db1 = backend_cpu(db_url) if db_url else {}
    db = sum(v - db0.get(k, 0.0) for k, v in db1.items())
    return result, srv1 - srv0, db


# -- the servers ---------------------------------------------------------------------------------


@contextmanager
def stub_server(canned_path: Path, log: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "WG_STUB_CANNED": str(canned_path), "PYTHONPATH": str(ROOT)}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "uvicorn"),
                "bench.stub_hub:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--http",
                "httptools",
                "--no-access-log",
                "--no-server-header",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc=proc, timeout=180)
        yield url, proc.pid
    finally:
        stop(proc)


def grant_all(db_url: str, model: str) -> None:
    namespace, name = model.split("/")
    engine = create_engine(db_url)
    try:
        with Session(engine) as session, session.begin():
            model_id = session.scalar(
                select(Model.id).where(Model.namespace == namespace, Model.name == name)
            )
            for user_id in session.scalars(select(User.id).where(User.role == "researcher")):
                session.add(Grant(user_id=user_id, model_id=model_id, created_at=datetime.now(UTC)))
    finally:
        engine.dispose()


def publish(url: str, admin: str, model: str, files: dict[str, bytes], opens: datetime) -> None:
    publish_over_http(
        url,
        admin,
        model,
        components={"weights": [("research", opens.isoformat())]},
        files={p: ("weights", d) for p, d in files.items()},
    )


# -- the report -----------------------------------------------------------------------------------


def report(
    real: Stampede, floor: Stampede, args: argparse.Namespace, load: tuple[float, float]
) -> str:
    n_files = args.clients * args.files
    ratio = floor.seconds / real.seconds if real.seconds else float("nan")

    def row(name: str, s: Stampede) -> str:
        cpu = (s.server_cpu + s.db_cpu) / max(1, s.files) * 1e6
        errors = sum(s.errors.values())
        return (
            f"| {name} | {s.seconds:.1f} s | {s.files:,} / {n_files:,} | "
            f"{s.requests / s.seconds:,.0f} | {errors} | {cpu:,.0f} µs "
            f"({s.server_cpu:.1f} s server + {s.db_cpu:.1f} s database) | {s.client_cpu:.1f} s |"
        )

    kinds = [
        f"| {k} | {real.percentile(k, 50):.1f} / {real.percentile(k, 99):.1f} | "
        f"{floor.percentile(k, 50):.1f} / {floor.percentile(k, 99):.1f} | "
        f"{sum(real.statuses.get(k, {}).values()):,} |"
        for k in KINDS
    ]
    errors = ", ".join(f"{k}: {v}" for k, v in sorted({**real.errors}.items())) or "none"
    return "\n".join(
        [
            "## Stampede: huggingface_hub clients at the instant a component opens",
            "",
            f"`python bench/stampede.py` — {args.clients} simulated `huggingface_hub` clients"
            f" ({args.clients // CLIENTS_PER_KEY} researchers' keys, {CLIENTS_PER_KEY} clients"
            f" each) start within {args.spread:.0f} s of the instant a component of a"
            f" {args.files}-file release ({args.file_kib} KiB files) opens to the research"
            " tier, each replaying the requests the real `snapshot_download` sent for an"
            " identical release (recorded through a proxy in the same run: model info, tree,"
            " then HEAD and GET of `/resolve` per file) and following each 302 to moto's S3."
            " weightgate: `weightgate serve --workers 2`, PostgreSQL, S3 on moto (redirect"
            " mode). Floor: bench/stub_hub.py, the same routes answered with responses"
            " captured from weightgate (302s to the same presigned URLs), uvicorn with 2"
            " workers. Load from one asyncio process, one keep-alive connection per client.",
            "",
            "| server | time to every file | files delivered | req/s | errors | server + DB CPU"
            " per file | load generator CPU |",
            "|---|---|---|---|---|---|---|",
            row("weightgate", real),
            row("stub (floor)", floor),
            "",
            "| request | weightgate p50 / p99 ms | stub p50 / p99 ms | count |",
            "|---|---|---|---|",
            *kinds,
            "",
            f"weightgate's time to every file as a share of the floor's: **{ratio:.2f}**"
            f" (goal ≥ 0.5, {'met' if ratio >= 0.5 else 'not met'}). Errors (must be 0: no 5xx,"
            f" no dropped connection, no 429 with the default quotas): {errors}.",
            "",
            f"Machine: {machine()}. The 2 cores are shared by the servers, moto, PostgreSQL,"
            " the load generator and, during this run, other people's test suites (1-minute"
            f" load average {load[0]:.1f} at the start, {load[1]:.1f} at the end): absolute"
            " figures are noisy; the ratio compares runs made minutes apart on the same machine.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-kib", type=int, default=16)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which they start")
    parser.add_argument("--lead", type=float, default=20.0, help="seconds from publish to opening")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wg-stampede-") as tmp_name:
        tmp = Path(tmp_name)
        with moto_server() as s3, fresh_database(tmp, kind="postgresql", label="stampede") as db:
            bucket = "stampede"
            boto3.client("s3", endpoint_url=s3, region_name="us-east-1").create_bucket(
                Bucket=bucket
            )
            env = {
                "WEIGHTGATE_DATABASE_URL": db,
                "WEIGHTGATE_STORAGE_URL": f"s3://{bucket}/objects",
                "WEIGHTGATE_S3_ENDPOINT_URL": s3,
                "WEIGHTGATE_S3_PATH_STYLE": "true",
                "WEIGHTGATE_S3_REGION": "us-east-1",
                "WEIGHTGATE_SCHEDULER_ENABLED": "false",
                "WEIGHTGATE_LOG_LEVEL": "WARNING",
            }
            with live_server(env, tmp=tmp, workers=2, ready_within=180) as server:
                admin = create_user(server, "ops@example.org", "admin")
                keys = [
                    create_user(server, f"r{i}@example.org")
                    for i in range(max(1, args.clients // CLIENTS_PER_KEY))
                ]
                now = datetime.now(UTC)
                publish(
                    server.url,
                    admin,
                    PROBE,
                    release_files(args.files, args.file_kib * 1024),
                    now - timedelta(minutes=1),
                )
                grant_all(db, PROBE)
                probe = record_snapshot(server.url, keys[0], tmp / "hf")
                print(
                    f"snapshot_download sent {len(probe)} requests:",
                    Counter(kind_of(m, t) for m, t in probe),
                    flush=True,
                )
                opens = datetime.now(UTC) + timedelta(seconds=args.lead)
                publish(
                    server.url, admin, MODEL, release_files(args.files, args.file_kib * 1024), opens
                )
                grant_all(db, MODEL)
                swap = {
                    revision(server.url, admin, PROBE): revision(server.url, admin, MODEL),
                    PROBE: MODEL,
                }
                sequence = [(m, swapped(t, swap)) for m, t in probe]
                start = opens.timestamp() + 0.05
                print(f"opening in {start - time.time():.1f} s", flush=True)
                real, srv, dbc = measured(
                    server.proc.pid,
                    db,
                    lambda: run_stampede(
                        server.url,
                        sequence,
                        keys,
                        clients=args.clients,
                        start=start,
                        spread=args.spread,
                    ),
                )
                real.server_cpu, real.db_cpu = srv, dbc
                print("weightgate:", real.seconds, real.files, real.errors, flush=True)
                # Presigned URLs live 5 minutes: capture the stub's answers just before its run.
                stub_answers = canned(server.url, keys[0], probe, swap)
            (tmp / "canned.json").write_text(json.dumps(stub_answers))
            with stub_server(tmp / "canned.json", tmp / "stub.log") as (stub_url, stub_pid):
                floor, srv, _ = measured(
                    stub_pid,
                    None,
                    lambda: run_stampede(
                        stub_url,
                        sequence,
                        keys,
                        clients=args.clients,
                        start=time.time() + 1,
                        spread=args.spread,
                    ),
                )
                floor.server_cpu = srv
                print("stub:", floor.seconds, floor.files, floor.errors, flush=True)
    text_ = report(real, floor, args, (load0, os.getloadavg()[0]))
    print()
    print(text_)
    if not args.no_write:
        write_section("stampede", text_)


if __name__ == "__main__":
    main()
