"""One ``weightgate download`` run: read the manifest, skip what is already on disk and
verified, get one token, fetch the rest in parallel, and record what is now in place."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from app.cli.download import MIN_SPLIT, Abandoned, Fetched, FileFetcher, Stopped, TokenSource
from app.cli.download_file import FileDownload, Segment
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
    min_split: int = MIN_SPLIT


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
        api,
        tokens,
        plan,
        opts.root,
        reporter,
        retries=opts.retries,
        sleep=sleep,
        stop=stop,
        min_split=opts.min_split,
    )
    try:
        _fetch_all(fetcher, todo, record, result, reporter, parallel=opts.parallel, stop=stop)
    finally:
        fetcher.transport.close()
        reporter.close()
        record.save(opts.root)
        result.token_renewals = tokens.renewals
    return result


def shares(todo: list[RemoteFile], *, parallel: int, min_split: int) -> dict[str, int]:
    """Connections per file: in proportion to its bytes (a release of one large file gets
    them all, one of many similar files one each), never a range under ``min_split``."""
    total = sum(f.size for f in todo) or 1
    return {
        f.path: max(1, min(round(parallel * f.size / total), f.size // min_split, parallel))
        for f in todo
    }


class _Work:
    """The queue the download threads share: files to open, then their segments. A file's
    extra segments go to the front, so idle connections take them before the next file."""

    def __init__(self, fetcher: FileFetcher, todo: list[RemoteFile], share: dict[str, int]) -> None:
        self.fetcher = fetcher
        self.share = share
        self.futures: dict[str, Future[Fetched]] = {f.path: Future() for f in todo}
        self._items: deque[RemoteFile | tuple[FileDownload, Segment]] = deque(todo)
        self._cond = threading.Condition()
        self._opening = 0  # files being opened: their segments are not queued yet
        self._left: dict[str, int] = {}  # segments of a file not finished yet
        self._errors: dict[str, BaseException] = {}

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._items and self._opening:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
                if isinstance(item, RemoteFile):
                    self._opening += 1
            if isinstance(item, RemoteFile):
                self._open(item)
            else:
                self._segment(*item)

    def _open(self, f: RemoteFile) -> None:
        job: FileDownload | None = None
        try:
            if self.fetcher.stop.is_set():
                raise Stopped
            job = self.fetcher.open(f, connections=self.share[f.path])
        except BaseException as e:  # surfaced by the future, in the main thread
            self.futures[f.path].set_exception(e)
        with self._cond:
            self._opening -= 1
            if job is not None:
                self._left[f.path] = len(job.segments)
                self._items.extendleft((job, s) for s in reversed(job.segments[1:]))
            self._cond.notify_all()
        if job is not None and job.segments:
            self._segment(job, job.segments[0])
        elif job is not None:
            self._settle(job)

    def _segment(self, job: FileDownload, seg: Segment) -> None:
        path = job.file.path
        try:
            if self.fetcher.stop.is_set():
                raise Stopped
            if job.failed:
                raise Abandoned
            self.fetcher.fetch_segment(job, seg)
        except BaseException as e:
            with self._cond:
                if not isinstance(e, Abandoned):
                    self._errors.setdefault(path, e)
                job.failed = True  # the file's other segments stop at their next read
        with self._cond:
            self._left[path] -= 1
            last = self._left[path] == 0
        if last:
            self._settle(job)

    def _settle(self, job: FileDownload) -> None:
        fut = self.futures[job.file.path]
        error = self._errors.pop(job.file.path, None)
        if error is not None:
            self.fetcher.give_up(job, error)
            fut.set_exception(error)
            return
        try:
            fut.set_result(self.fetcher.finish(job))
        except BaseException as e:
            fut.set_exception(e)


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
    parallel = max(1, parallel)
    work = _Work(fetcher, todo, shares(todo, parallel=parallel, min_split=fetcher.min_split))
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="download")
    for _ in range(parallel):
        pool.submit(work.run)
    try:
        for f in todo:
            try:
                got = work.futures[f.path].result()
            except (Stopped, Abandoned):
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
        # Stop the workers between reads; their .part files stay for the next run.
        stop.set()
        result.interrupted = True
        raise
    finally:
        pool.shutdown(wait=True)
