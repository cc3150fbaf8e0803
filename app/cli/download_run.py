"""One ``weightgate download`` run: read the manifest, skip what is already on disk and
verified, get one token, fetch the rest in parallel, and record what is now in place."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from app.cli.download import Fetched, FileFetcher, Stopped, TokenSource
from app.cli.errors import CliError, NotFoundError
from app.cli.http import ApiClient, Sleep
from app.cli.localfiles import LocalRecord, already_complete, local_path
from app.cli.plan import Plan, RemoteFile, Target, fetch_plan
from app.cli.progress import Reporter, human_size, make_reporter


@dataclass
class RunResult:
    plan: Plan
    fetched: list[Fetched] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, CliError]] = field(default_factory=list)
    token_renewals: int = 0
    interrupted: bool = False

    def first_error(self) -> CliError | None:
        return min(self.failed, key=lambda pf: pf[0])[1] if self.failed else None


@dataclass(frozen=True)
class Options:
    root: Path
    components: list[str] | None = None
    includes: list[str] | None = None
    parallel: int = 4
    retries: int = 5
    plain: bool | None = None
    ttl_seconds: int | None = None


def open_record(root: Path, plan: Plan, server: str) -> LocalRecord:
    record = LocalRecord.load(root)
    if record is not None and record.model != plan.model:
        raise CliError(
            f"{root} already holds {record.model}; download {plan.model} into another "
            "directory (--to)",
            code="directory_in_use",
        )
    if record is None or record.revision != plan.revision:
        # Another release (or none yet): files already here are re-checked by hash.
        record = LocalRecord(plan.model, plan.version, plan.revision, server)
    return record


def split_done(
    plan: Plan, record: LocalRecord, root: Path
) -> tuple[list[RemoteFile], list[RemoteFile]]:
    """(to fetch, already complete)."""
    todo, done = [], []
    for f in plan.files:
        dest = local_path(root, f.path)
        if already_complete(record, f.path, dest, size=f.size, sha256=f.sha256):
            record.mark_verified(f.path, dest, sha256=f.sha256, component=f.component)
            done.append(f)
        else:
            todo.append(f)
    return todo, done


def download_release(
    api: ApiClient,
    target: Target,
    opts: Options,
    *,
    sleep: Sleep = time.sleep,
    reporter: Reporter | None = None,
) -> RunResult:
    plan = fetch_plan(api, target, components=opts.components, includes=opts.includes)
    if opts.includes and not plan.files and not plan.closed:
        raise NotFoundError(
            f"no file of {plan.model}@{plan.version} matches {' '.join(opts.includes)}",
            code="no_match",
        )
    opts.root.mkdir(parents=True, exist_ok=True)
    record = open_record(opts.root, plan, api.config.url)
    todo, done = split_done(plan, record, opts.root)
    result = RunResult(plan, skipped=[f.path for f in done])
    if not todo:
        record.save(opts.root)
        return result
    tokens = TokenSource(
        api, plan=plan, files=todo, by_path=bool(opts.includes), ttl_seconds=opts.ttl_seconds
    )
    tokens.start()
    reporter = reporter or make_reporter(total_bytes=sum(f.size for f in todo), plain=opts.plain)
    stop = threading.Event()
    fetcher = FileFetcher(
        api, tokens, plan, opts.root, reporter, retries=opts.retries, sleep=sleep, stop=stop
    )
    try:
        _fetch_all(fetcher, todo, record, result, reporter, parallel=opts.parallel, stop=stop)
    finally:
        reporter.close()
        record.save(opts.root)
        result.token_renewals = tokens.renewals
    return result


def _fetch_all(
    fetcher: FileFetcher,
    todo: list[RemoteFile],
    record: LocalRecord,
    result: RunResult,
    reporter: Reporter,
    *,
    parallel: int,
    stop: threading.Event,
) -> None:
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="download")
    futures: dict[Future[Fetched], RemoteFile] = {pool.submit(fetcher.fetch, f): f for f in todo}
    try:
        for fut, f in futures.items():
            try:
                got = fut.result()
            except Stopped:
                continue
            except CliError as e:
                result.failed.append((f.path, e))
                reporter.note(f"failed  {f.path}: {e.message}")
                continue
            dest = local_path(fetcher.root, f.path)
            record.mark_verified(f.path, dest, sha256=f.sha256, component=f.component)
            result.fetched.append(got)
            resumed = f", resumed at {human_size(got.resumed_from)}" if got.resumed_from else ""
            reporter.finish(f.path, f"sha256 ok{resumed}")
    except KeyboardInterrupt:
        # Stop the workers between chunks; their .part files stay for the next run.
        stop.set()
        result.interrupted = True
        for fut in futures:
            fut.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
