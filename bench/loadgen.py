"""A small HTTP/1.1 load generator for the benches: keep-alive connections on uvloop, raw
sockets, pre-built requests, in its own process so its CPU is not the server's.

Cheaper per request than any Python HTTP client library, so on a 2-core machine it can
drive a bare uvicorn route without being the bottleneck (it reports its own CPU use to let
the reader check that).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[int, int]
    latencies: list[float] = field(repr=False)
    client_cpu: float = 0.0
    # Every response, warm-up included: what server CPU time is divided by.
    total: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1000


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    start_at: float,
    stop_at: float,
    latencies: list[float],
    statuses: Counter[int],
    total: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while True:
            t = time.perf_counter()
            if t >= stop_at:
                return
            request = requests[i % len(requests)]
            writer.write(request)
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            # A HEAD answer announces the body's length and sends none.
            for line in head.split(b"\r\n")[1:] if not request.startswith(b"HEAD ") else []:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            done = time.perf_counter()
            total[0] += 1
            if t >= start_at:
                latencies.append(done - t)
                statuses[int(head[9:12])] += 1
    finally:
        writer.close()


async def _run(
    host: str, port: int, requests: list[bytes], connections: int, warmup: float, duration: float
) -> LoadResult:
    start_at = time.perf_counter() + warmup
    stop_at = start_at + duration
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    total = [0]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(
        *(
            _connection(host, port, requests, i, start_at, stop_at, latencies, statuses, total)
            for i in range(connections)
        )
    )
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return LoadResult(
        len(latencies),
        duration,
        dict(statuses),
        latencies,
        cpu / (warmup + duration),
        total[0],
    )


def _child(
    args: tuple[str, int, list[bytes], int, float, float],
    out: multiprocessing.Queue[Any],
) -> None:
    import uvloop

    out.put(uvloop.run(_run(*args)))


def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int = 16,
    warmup: float = 2.0,
    duration: float = 10.0,
) -> LoadResult:
    """Drive ``requests`` (cycled; each a complete HTTP/1.1 request) for ``duration`` s."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_child, args=((host, port, requests, connections, warmup, duration), queue)
    )
    proc.start()
    result: LoadResult = queue.get(timeout=warmup + duration + 120)
    proc.join(30)
    return result


def get(
    path: str, host: str, headers: dict[str, str] | None = None, *, method: str = "GET"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post_json(path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
