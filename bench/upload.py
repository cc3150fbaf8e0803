"""Does a huge upload stay flat in server memory?

Starts ``weightgate serve`` (uvicorn, SQLite + filesystem store in a temp dir), streams a
file generated on the fly (2 GiB by default; never held in memory by this script either)
through ``PUT .../files/{path}``, samples the server process's RSS with psutil while the
bytes flow, and prints the peak next to the file size. It asserts nothing: it reports, and
writes its section of bench/RESULTS.md.

    python bench/upload.py [--size-mib 2048] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

# Run as a script (python bench/upload.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.embedded import start_embedded
from bench.results import machine, write_section

MiB = 1024 * 1024
CHUNK = MiB
LIMIT_MB = 300  # what the issue asks of the upload path


def generated(seed: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes, 1 MiB at a time, every chunk different (a counter over a random
    block), so nothing downstream can deduplicate or compress its way out. The same seed
    gives the same stream, so it can be hashed first and sent second without storing it."""
    block = bytearray(seed)
    sent = 0
    i = 0
    while sent < total:
        block[:8] = i.to_bytes(8, "big")
        n = min(CHUNK, total - sent)
        yield bytes(block[:n])
        sent += n
        i += 1


def sha256_of(seed: bytes, total: int) -> str:
    h = hashlib.sha256()
    for c in generated(seed, total):
        h.update(c)
    return h.hexdigest()


class RssSampler(threading.Thread):
    """Samples the RSS of a process and its children every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def rss(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self.rss())
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Result:
    size: int
    seconds: float
    baseline_rss: int
    peak_rss: int
    samples: int
    sha256_ok: bool


def run(size: int, workdir: Path) -> Result:
    server = start_embedded(workdir)
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=600) as http:
            for method, path, body in (
                ("POST", "/v1/models", {"id": "bench/upload"}),
                ("POST", "/v1/models/bench/upload/releases", {"version": "v1"}),
                ("POST", "/v1/models/bench/upload/releases/v1/components", {"name": "weights"}),
            ):
                http.request(method, path, json=body).raise_for_status()
            print(f"hashing {size / MiB:.0f} MiB of generated data ...", flush=True)
            seed = os.urandom(CHUNK)
            sha = sha256_of(seed, size)
            sampler = RssSampler(server.proc.pid)
            baseline = sampler.rss()
            sampler.start()
            print("uploading ...", flush=True)
            t0 = time.perf_counter()
            resp = http.put(
                "/v1/models/bench/upload/releases/v1/files/model.safetensors",
                params={"component": "weights"},
                content=generated(seed, size),
                headers={"Content-Length": str(size), "X-Content-SHA256": sha},
            )
            seconds = time.perf_counter() - t0
            sampler.stop()
            resp.raise_for_status()
            body = resp.json()
        return Result(
            size=size,
            seconds=seconds,
            baseline_rss=baseline,
            peak_rss=sampler.peak,
            samples=sampler.samples,
            sha256_ok=body["sha256"] == sha and body["size"] == size,
        )
    finally:
        server.stop()


def report(r: Result) -> str:
    mb = 1_000_000
    verdict = "flat" if r.peak_rss < LIMIT_MB * mb else f"NOT flat (over {LIMIT_MB} MB)"
    return "\n".join(
        [
            "## Upload: server memory while streaming one large file",
            "",
            "`python bench/upload.py` — `weightgate serve` (1 uvicorn worker, SQLite, filesystem",
            "store) receives one `PUT .../files/model.safetensors` with `Content-Length` and",
            "`X-Content-SHA256`; the body is generated on the fly. Server RSS (process and",
            f"children) sampled every 20 ms ({r.samples} samples).",
            "",
            "| file size | server RSS before | server peak RSS | growth | time | throughput |",
            "|---|---|---|---|---|---|",
            f"| {r.size / MiB:,.0f} MiB | {r.baseline_rss / mb:.0f} MB | {r.peak_rss / mb:.0f} MB"
            f" | {(r.peak_rss - r.baseline_rss) / mb:+.0f} MB | {r.seconds:.1f} s"
            f" | {r.size / MiB / r.seconds:.0f} MiB/s |",
            "",
            f"Peak RSS is {verdict}: the limit asked for is {LIMIT_MB} MB whatever the file",
            "size. Stored SHA-256 and size "
            + ("matched the declared ones." if r.sha256_ok else "DID NOT match the declared ones."),
            "",
            f"Machine: {machine()}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048, help="file size in MiB")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wg-bench-upload-") as tmp:
        result = run(args.size_mib * MiB, Path(tmp))
    text = report(result)
    print()
    print(
        f"file size {result.size / MiB:,.0f} MiB   server peak RSS {result.peak_rss / 1e6:.0f} MB"
    )
    print()
    print(text)
    if not args.no_write:
        write_section("upload", text)


if __name__ == "__main__":
    main()
