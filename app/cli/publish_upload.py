"""Hash and upload a plan's files in parallel, showing progress.

Each worker hashes one file (so the SHA-256 can be declared), skips it if the draft already
holds those bytes under that path and component, and otherwise streams it up. On a terminal
the progress is a set of rich bars; otherwise (CI logs, pipes) one plain line per file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from app.cli.publish_api import AdminApi, ApiError, sha256_file
from app.cli.publish_plan import LocalFile


class Cancelled(Exception):
    """Another file failed; this one stops early."""


@dataclass(frozen=True)
class Uploaded:
    file: LocalFile
    sha256: str
    sent: bool  # False when the draft already had these bytes


class View:
    """Plain progress: a line per finished file (for logs and pipes)."""

    def __init__(self, console: Console, total_bytes: int) -> None:
        self.console = console
        self.total = total_bytes

    def hashing(self, f: LocalFile) -> Callable[[int], None]:
        return lambda n: None

    def uploading(self, f: LocalFile) -> tuple[Callable[[int], None], Callable[[], None]]:
        return (lambda n: None), (lambda: None)

    def finished(self, result: Uploaded) -> None:
        verb = "uploaded" if result.sent else "unchanged"
        self.console.print(
            f"{verb} {result.file.path} ({result.file.size} bytes, sha256 {result.sha256})",
            highlight=False,
            markup=False,
        )

    def session(self) -> AbstractContextManager[None]:
        return _nothing()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class BarsView(View):
    """rich bars: one per file in flight and one for the whole release."""

    def __init__(self, console: Console, total_bytes: int) -> None:
        super().__init__(console, total_bytes)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.overall: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}

    def session(self) -> AbstractContextManager[None]:
        return self._session()

    @contextmanager
    def _session(self) -> Iterator[None]:
        with self.progress:
            self.overall = self.progress.add_task("total", total=self.total)
            yield

    def _task(self, f: LocalFile, description: str) -> TaskID:
        task = self._tasks.get(f.path)
        if task is None:
            task = self.progress.add_task(description, total=f.size)
            self._tasks[f.path] = task
        else:
            self.progress.reset(task, description=description, total=f.size)
        return task

    def hashing(self, f: LocalFile) -> Callable[[int], None]:
        task = self._task(f, f"hash   {f.path}")
        return lambda n: self.progress.advance(task, n)

    def uploading(self, f: LocalFile) -> tuple[Callable[[int], None], Callable[[], None]]:
        task = self._task(f, f"upload {f.path}")
        sent = [0]

        def advance(n: int) -> None:
            sent[0] += n
            self.progress.advance(task, n)
            if self.overall is not None:
                self.progress.advance(self.overall, n)

        def restart() -> None:  # a retry sends the file again from its first byte
            if self.overall is not None:
                self.progress.advance(self.overall, -sent[0])
            sent[0] = 0
            self.progress.reset(task, description=f"retry  {f.path}", total=f.size)

        return advance, restart

    def finished(self, result: Uploaded) -> None:
        task = self._tasks.pop(result.file.path)
        if not result.sent and self.overall is not None:
            self.progress.advance(self.overall, result.file.size)
        self.progress.remove_task(task)
        super().finished(result)


def make_view(console: Console, total_bytes: int) -> View:
    return BarsView(console, total_bytes) if console.is_terminal else View(console, total_bytes)


def upload_all(
    api: AdminApi,
    *,
    model: str,
    version: str,
    files: list[LocalFile],
    existing: dict[str, tuple[str, str]],
    jobs: int,
    view: View,
    stop: threading.Event | None = None,
) -> list[Uploaded]:
    """Upload ``files`` with ``jobs`` workers. ``existing`` maps the draft's paths to
    ``(sha256, component)``. The first failure sets ``stop``, which makes the other workers
    abandon their files at the next chunk, and is raised."""
    stop = stop or threading.Event()

    def guard(advance: Callable[[int], None]) -> Callable[[int], None]:
        def step(n: int) -> None:
            if stop.is_set():
                raise Cancelled
            advance(n)

        return step

    def one(f: LocalFile) -> Uploaded:
        sha = sha256_file(f.source, guard(view.hashing(f)))
        if existing.get(f.path) == (sha, f.component):
            result = Uploaded(f, sha, sent=False)
        else:
            advance, restart = view.uploading(f)
            body = api.upload(
                model,
                version,
                path=f.path,
                source=f.source,
                size=f.size,
                sha256=sha,
                component=f.component,
                progress=guard(advance),
                restart=restart,
            )
            if body.get("sha256") != sha or body.get("size") != f.size:
                raise ApiError(
                    200, "unexpected_answer", f"the server stored {f.path} with other content"
                )
            result = Uploaded(f, sha, sent=True)
        view.finished(result)
        return result

    # Largest first: the long uploads start early and the small ones fill the gaps.
    ordered = sorted(files, key=lambda f: (-f.size, f.path))
    with view.session(), ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, f) for f in ordered]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next(
            (
                f
                for f in futures
                if f.done()
                and f.exception() is not None
                and not isinstance(f.exception(), Cancelled)
            ),
            None,
        )
        if failed is not None:
            stop.set()
            for f in pending:
                f.cancel()
            wait(pending)
            error = failed.exception()
            assert error is not None
            raise error
    return [f.result() for f in futures]
