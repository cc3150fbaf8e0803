"""Download progress: rich bars on a terminal, plain lines otherwise (CI logs, pipes).

Both write to stderr, so stdout carries only results a script may want to read. Reporters
are called from the download threads and are safe to share between them.
"""

from __future__ import annotations

import sys
import threading
from typing import Protocol, TextIO

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


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Reporter(Protocol):
    def start(self, path: str, *, total: int, resumed_at: int) -> None: ...

    def advance(self, path: str, n: int) -> None: ...

    def restart(self, path: str) -> None:
        """The server sent the whole file again: progress for ``path`` goes back to 0."""
        ...

    def finish(self, path: str, message: str) -> None: ...

    def note(self, message: str) -> None: ...

    def close(self) -> None: ...


class PlainReporter:
    """One line when a file starts and one when it ends; no carriage-return animations."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._out = stream or sys.stderr
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(text, file=self._out, flush=True)

    def start(self, path: str, *, total: int, resumed_at: int) -> None:
        if resumed_at:
            self._line(
                f"resume  {path} at {human_size(resumed_at)} of {human_size(total)}"
                f" ({resumed_at} bytes)"
            )
        else:
            self._line(f"get     {path} ({human_size(total)})")

    def advance(self, path: str, n: int) -> None:
        return None

    def restart(self, path: str) -> None:
        self._line(f"restart {path}: the server sent the whole file again")

    def finish(self, path: str, message: str) -> None:
        self._line(f"done    {path}: {message}")

    def note(self, message: str) -> None:
        self._line(message)

    def close(self) -> None:
        return None


class RichReporter:
    """A bar per file in flight and one for the total."""

    def __init__(self, *, total_bytes: int, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._progress.start()
        self._total = self._progress.add_task("total", total=total_bytes)

    def start(self, path: str, *, total: int, resumed_at: int) -> None:
        label = path if len(path) <= 40 else "…" + path[-39:]
        with self._lock:
            self._tasks[path] = self._progress.add_task(label, total=total, completed=resumed_at)
        self._progress.advance(self._total, resumed_at)

    def advance(self, path: str, n: int) -> None:
        self._progress.advance(self._tasks[path], n)
        self._progress.advance(self._total, n)

    def restart(self, path: str) -> None:
        task = self._progress.tasks[self._tasks[path]]
        self._progress.advance(self._total, -task.completed)
        self._progress.reset(self._tasks[path])

    def finish(self, path: str, message: str) -> None:
        with self._lock:
            task = self._tasks.pop(path, None)
        if task is not None:
            self._progress.remove_task(task)
        self._progress.console.print(f"[green]done[/] {path}: {message}")

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False)

    def close(self) -> None:
        self._progress.stop()


def make_reporter(*, total_bytes: int, plain: bool | None = None) -> Reporter:
    """Rich bars when stderr is a terminal (unless ``plain``), plain lines otherwise."""
    console = Console(stderr=True)
    if plain or (plain is None and not console.is_terminal):
        return PlainReporter()
    return RichReporter(total_bytes=total_bytes, console=console)
