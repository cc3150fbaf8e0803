"""How fast do researchers' tools download from weightgate, side by side?

Starts ``weightgate serve`` (1 uvicorn worker, SQLite + filesystem store, so the server
streams the bytes itself), publishes one open release of N files, and fetches the same
files from the same server, in alternating order over several rounds, with:

- ``curl`` (``--parallel`` and one-at-a-time) from ``/v1/files``,
- ``weightgate download`` (``--parallel P`` and ``--parallel 1``) from ``/v1/files``,
- ``huggingface_hub.snapshot_download`` (``max_workers=P``) from ``/resolve``,
- and one file alone: ``curl`` against ``weightgate download --parallel P``, which fetches
  a large file as P ranges over parallel connections.

Every client runs as its own process, so the wall time includes its start-up; CPU is the
client process's user+sys time, and the server's CPU is sampled too. Every run's files are
checked against their SHA-256 (outside the timing). Prints the medians and the ratios, and
writes the ``download`` section of bench/RESULTS.md. It asserts nothing: it reports.

    python bench/download.py [--files 4] [--size-mib 256] [--rounds 3] [--parallel 4]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil

# Run as a script (python bench/download.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.embedded import start_embedded
from bench.results import machine, write_section

MiB = 1024 * 1024
BIN = Path(sys.executable).parent
MODEL = "bench/download"


@dataclass
class Sample:
    wall: float
    client_cpu: float
    server_cpu: float


@dataclass
class Method:
    name: str
    label: str
    source: str  # the route the bytes come from
    files: int | None = None  # how many of the release's files it fetches (None: all)
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(float(getattr(s, attr)) for s in self.samples))


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    files: dict[str, str]  # path -> sha256
    total: int


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start_server(workdir: Path, n_files: int, size: int) -> tuple[Server, dict[str, str]]:
    embedded = start_embedded(
        workdir,
        {
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
            # The bench downloads far more than an anonymous caller may per minute by default.
            "WEIGHTGATE_QUOTA_ANONYMOUS_PER_MINUTE": "0",
        },
    )
    try:
        files = publish(embedded.url, embedded.admin_key, n_files, size)
    except BaseException:
        embedded.stop()
        raise
    return Server(embedded.url, embedded.proc, files, n_files * size), embedded.env


def publish(url: str, key: str, n_files: int, size: int) -> dict[str, str]:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    rel = f"/v1/models/{MODEL}/releases/v1"
    files: dict[str, str] = {}
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600
    ) as http:
        http.post("/v1/models", json={"id": MODEL}).raise_for_status()
        http.post(f"/v1/models/{MODEL}/releases", json={"version": "v1"}).raise_for_status()
        http.post(
            f"{rel}/components",
            json={"name": "weights", "schedule": [{"tier": "open", "at": yesterday}]},
        ).raise_for_status()
        for i in range(n_files):
            path = f"model-{i + 1:05d}-of-{n_files:05d}.safetensors"
            data = os.urandom(size)
            files[path] = hashlib.sha256(data).hexdigest()
            print(f"uploading {path} ({size / MiB:.0f} MiB)", flush=True)
            http.put(
                f"{rel}/files/{path}", params={"component": "weights"}, content=data
            ).raise_for_status()
            del data
        http.post(f"{rel}/publish").raise_for_status()
    return files


def check(folder: Path, files: dict[str, str]) -> None:
    for path, sha in files.items():
        h = hashlib.sha256()
        with (folder / path).open("rb") as fh:
            while chunk := fh.read(8 * MiB):
                h.update(chunk)
        if h.hexdigest() != sha:
            raise SystemExit(f"{folder / path}: wrong SHA-256; the bench is void")


def commands(
    server: Server, out: Path, parallel: int
) -> dict[str, tuple[list[str], dict[str, str], Path]]:
    """name -> (argv, extra env, folder where the files end up)."""
    urls = [f"{server.url}/v1/files/{MODEL}/v1/{p}" for p in server.files]
    curl_out = [a for p, u in zip(server.files, urls, strict=True) for a in ("-o", str(out / p), u)]
    curl = ["curl", "--silent", "--show-error", "--fail"]
    cli = [str(BIN / "weightgate"), "download", MODEL, "--to", str(out), "--plain"]
    cli_env = {"WEIGHTGATE_URL": server.url, "XDG_CONFIG_HOME": str(out / "cfg")}
    first = next(iter(server.files))
    hf_env = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    hf_code = (
        "from huggingface_hub import snapshot_download as s;"
        f"print(s({MODEL!r}, endpoint={server.url!r}, token=False,"
        f" cache_dir={str(out / 'hf')!r}, max_workers={parallel}))"
    )
    return {
        "curl_parallel": (
            [*curl, "--parallel", "--parallel-max", str(parallel), *curl_out],
            {},
            out,
        ),
        "curl_sequential": ([*curl, *curl_out], {}, out),
        "cli_parallel": (
            [*cli, "--parallel", str(parallel)],
            cli_env,
            out,
        ),
        "cli_sequential": (
            [*cli, "--parallel", "1"],
            cli_env,
            out,
        ),
        "hf_snapshot": ([sys.executable, "-c", hf_code], hf_env, out),
        "curl_one": ([*curl, *curl_out[:3]], {}, out),
        "cli_one": ([*cli, "--parallel", str(parallel), "--include", first], cli_env, out),
    }


def run_once(
    argv: list[str], env: dict[str, str], server_proc: psutil.Process
) -> tuple[Sample, str]:
    cpu0, srv0 = child_cpu(), sum(server_proc.cpu_times()[:2])
    t0 = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    sample = Sample(wall, child_cpu() - cpu0, sum(server_proc.cpu_times()[:2]) - srv0)
    return sample, done.stdout


def bench(server: Server, scratch: Path, rounds: int, parallel: int) -> list[Method]:
    methods = {
        "curl_parallel": Method("curl_parallel", f"curl --parallel ({parallel})", "/v1/files"),
        "cli_parallel": Method(
            "cli_parallel", f"weightgate download --parallel {parallel}", "/v1/files"
        ),
        "hf_snapshot": Method(
            "hf_snapshot", f"snapshot_download(max_workers={parallel})", "/resolve"
        ),
        "curl_sequential": Method("curl_sequential", "curl, one file at a time", "/v1/files"),
        "cli_sequential": Method("cli_sequential", "weightgate download --parallel 1", "/v1/files"),
        "curl_one": Method("curl_one", "curl, one file alone", "/v1/files", files=1),
        "cli_one": Method(
            "cli_one",
            f"weightgate download --parallel {parallel}, one file alone (ranges)",
            "/v1/files",
            files=1,
        ),
    }
    server_proc = psutil.Process(server.proc.pid)
    order = list(methods)
    for r in range(rounds):
        # Rotate the order each round so no method always runs on a warm or cold cache.
        for name in order[r % len(order) :] + order[: r % len(order)]:
            out = scratch / f"{name}-{r}"
            out.mkdir(parents=True)
            argv, env, _ = commands(server, out, parallel)[name]
            sample, stdout = run_once(argv, env, server_proc)
            folder = Path(stdout.strip().splitlines()[-1]) if name == "hf_snapshot" else out
            wanted = dict(list(server.files.items())[: methods[name].files])
            check(folder, wanted)
            methods[name].samples.append(sample)
            size = server.total * len(wanted) // len(server.files)
            print(
                f"round {r + 1} {name:<16} {sample.wall:6.2f} s"
                f"  {size / MiB / sample.wall:7.0f} MiB/s"
                f"  client cpu {sample.client_cpu:5.2f} s  server cpu {sample.server_cpu:5.2f} s",
                flush=True,
            )
            shutil.rmtree(out)
    return list(methods.values())


def report(
    methods: list[Method],
    *,
    n_files: int,
    size: int,
    rounds: int,
    parallel: int,
    load: tuple[float, float],
) -> str:
    by = {m.name: m for m in methods}
    total = n_files * size

    def ratio(a: str, b: str) -> str:
        """a's throughput as a share of b's (the same bytes: b's wall over a's)."""
        return f"{by[b].median('wall') / by[a].median('wall'):.2f}"

    def nbytes(m: Method) -> int:
        return total if m.files is None else size * m.files

    rows = [
        f"| {m.label} | `{m.source}` | {m.median('wall'):.2f} s | "
        f"{nbytes(m) / MiB / m.median('wall'):,.0f} MiB/s | "
        f"{m.median('client_cpu') / (nbytes(m) / (1024 * MiB)):.2f} s | "
        f"{m.median('server_cpu') / (nbytes(m) / (1024 * MiB)):.2f} s |"
        for m in methods
    ]
    return "\n".join(
        [
            "## Download: weightgate CLI vs curl vs snapshot_download",
            "",
            "`python bench/download.py` — one `weightgate serve` (1 uvicorn worker, SQLite,",
            "filesystem store: the server streams the bytes) and one open release of "
            f"{n_files} files x {size / MiB:,.0f} MiB ({total / MiB:,.0f} MiB), fetched over",
            f"loopback by each client as its own process; medians of {rounds} rounds, the order",
            "rotated every round; every run's files checked against their SHA-256 afterwards.",
            "Wall time includes each client's start-up (Python imports for the CLI and",
            "`huggingface_hub`, ~0.3-0.6 s). CPU: the client process's user+sys and the",
            "server's, per GiB delivered.",
            "",
            "| client | route | wall | throughput | client CPU / GiB | server CPU / GiB |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "Throughput as a share of curl's, same bytes, same run (goal for the CLI ≥ 0.8):",
            "",
            f"- weightgate CLI / curl, parallel ({parallel}): "
            f"**{ratio('cli_parallel', 'curl_parallel')}**",
            f"- weightgate CLI / curl, one file at a time: "
            f"**{ratio('cli_sequential', 'curl_sequential')}**",
            f"- weightgate CLI ({parallel} ranges) / curl, one file alone: "
            f"**{ratio('cli_one', 'curl_one')}**",
            f"- snapshot_download / weightgate CLI, parallel ({parallel}): "
            f"**{ratio('hf_snapshot', 'cli_parallel')}**",
            "",
            "The CLI does more than curl for the same bytes: it hashes every byte (SHA-256)",
            "and fsyncs before the atomic rename, and records the download for `verify`;",
            "curl writes what arrives. `snapshot_download` issues a HEAD per file before the",
            "GET and writes into its cache (blobs + symlinks).",
            "",
            f"Machine: {machine()}. The 2 cores are shared by the server, the client and, during",
            f"this run, other work (1-minute load average {load[0]:.1f} at the start, "
            f"{load[1]:.1f} at the end): treat small differences as noise.",
        ]
    )


def main(
    argv: list[str] | None = None, *, write: Callable[[str, str], None] = write_section
) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="number of files")
    parser.add_argument("--size-mib", type=int, default=256, help="size of each file in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--parallel", type=int, default=4, help="concurrent downloads")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wg-bench-download-") as tmp:
        workdir = Path(tmp)
        server, _ = start_server(workdir, args.files, args.size_mib * MiB)
        try:
            methods = bench(server, workdir / "runs", args.rounds, args.parallel)
        finally:
            server.proc.terminate()
            try:
                server.proc.wait(15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
    text = report(
        methods,
        n_files=args.files,
        size=args.size_mib * MiB,
        rounds=args.rounds,
        parallel=args.parallel,
        load=(load_before, os.getloadavg()[0]),
    )
    print()
    print(text)
    if not args.no_write:
        write("download", text)


if __name__ == "__main__":
    main()
