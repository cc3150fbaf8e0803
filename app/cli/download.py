"""Fetching a release's files: one token shared by parallel workers, resumable partial files,
SHA-256 before anything is put in place.

For each file ``<dir>/<path>`` the bytes go to ``<path>.part``, next to a sidecar
``<path>.part.json`` holding the SHA-256 and size they must add up to. A later run (after a
crash, Ctrl-C or a dropped connection) finds both and asks only for the missing tail with
``Range``; a sidecar naming other content means the partial bytes are discarded. Only a
complete file whose SHA-256 matches is renamed into place (atomically); a mismatch deletes the
partial file and fails with :class:`IntegrityError`. Only 200/206 bodies are ever written:
an error page can never end up inside a weight file.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from app.cli.errors import IntegrityError, NetworkError, QuotaError
from app.cli.http import (
    MAX_QUOTA_WAIT,
    RETRY_STATUSES,
    ApiClient,
    Sleep,
    backoff,
    problem_of,
    retry_after,
)
from app.cli.localfiles import HASH_CHUNK, local_path
from app.cli.plan import Plan, RemoteFile
from app.cli.progress import Reporter

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

# A token that keeps being rejected right after renewal is not expiring: it is refused.
MAX_RENEWALS_PER_FILE = 2
# Scoping a token to paths is least privilege, but a token only holds so many paths.
MAX_TOKEN_PATHS = 128


class TokenSource:
    """The download token every worker uses. When the server says it expired (or was
    otherwise rejected), the first worker to notice fetches a new one; the others reuse it."""

    def __init__(
        self,
        api: ApiClient,
        *,
        plan: Plan,
        files: list[RemoteFile],
        by_path: bool,
        ttl_seconds: int | None = None,
    ) -> None:
        self._api = api
        self._body: dict[str, Any] = {"model": plan.model, "version": plan.version}
        if by_path and len(files) <= MAX_TOKEN_PATHS:
            self._body["paths"] = sorted(f.path for f in files)
        else:
            self._body["components"] = sorted({f.component for f in files})
        if ttl_seconds is not None:
            self._body["ttl_seconds"] = ttl_seconds
        self._lock = threading.Lock()
        self._token: str | None = None
        self._generation = 0
        self.renewals = 0

    def start(self) -> None:
        if self._api.authenticated:
            with self._lock:
                self._token = self._fetch()

    def current(self) -> tuple[str | None, int]:
        with self._lock:
            return self._token, self._generation

    def renew(self, generation: int) -> None:
        """Replace the token that failed (``generation``), unless another worker already did."""
        with self._lock:
            if generation == self._generation:
                self._token = self._fetch()
                self._generation += 1
                self.renewals += 1

    def _fetch(self) -> str:
        what = f"getting a download token for {self._body['model']}"
        out = self._api.request("POST", "/v1/tokens", json=self._body, what=what)
        return str(out["token"])


@dataclass(frozen=True)
class Fetched:
    path: str
    transferred: int  # bytes received in this run
    resumed_from: int  # bytes already on disk when this run started the file


class Stopped(Exception):
    """The run is being interrupted (Ctrl-C): leave the partial file for the next run."""


class _Retry(Exception):
    """A transient failure: try again after a pause (``wait`` when the server said so)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass
class _Partial:
    """The ``.part`` file of one download and the SHA-256 of the bytes in it so far.

    Chunks are written and hashed in lockstep, and a write interrupted by an exception is
    flushed when the file closes, so ``offset`` and ``digest`` always describe the file."""

    path: Path
    offset: int
    digest: Hash
    renewals: int = 0  # tokens renewed for this file; a third rejection is not expiry

    @classmethod
    def open(cls, path: Path, offset: int) -> _Partial:
        digest = hashlib.sha256()
        path.touch()
        with path.open("rb") as fh:
            remaining = offset
            while remaining and (chunk := fh.read(min(HASH_CHUNK, remaining))):
                digest.update(chunk)
                remaining -= len(chunk)
        return cls(path, offset, digest)

    def reset(self) -> None:
        self.offset = 0
        self.digest = hashlib.sha256()


def partial_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def discard(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def resumable_bytes(part: Path, sidecar: Path, f: RemoteFile) -> int:
    """How many bytes of ``part`` belong to ``f``; 0 (and nothing left) if they do not."""
    try:
        meta = json.loads(sidecar.read_text("utf-8"))
        size = part.stat().st_size
    except (OSError, ValueError):
        discard(part, sidecar)
        return 0
    if meta.get("sha256") != f.sha256 or meta.get("size") != f.size or size > f.size:
        discard(part, sidecar)
        return 0
    return size


class FileFetcher:
    """Downloads one file at a time (several fetchers' calls may run in parallel threads)."""

    def __init__(
        self,
        api: ApiClient,
        tokens: TokenSource,
        plan: Plan,
        root: Path,
        reporter: Reporter,
        *,
        retries: int = 5,
        sleep: Sleep = time.sleep,
        stop: threading.Event | None = None,
    ) -> None:
        self.api = api
        self.stop = stop or threading.Event()
        self.tokens = tokens
        self.plan = plan
        self.root = root
        self.reporter = reporter
        self.retries = retries
        self.sleep = sleep

    def fetch(self, f: RemoteFile) -> Fetched:
        dest = local_path(self.root, f.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part_path, sidecar = partial_paths(dest)
        resumed_from = resumable_bytes(part_path, sidecar, f)
        sidecar.write_text(json.dumps({"sha256": f.sha256, "size": f.size, "path": f.path}))
        part = _Partial.open(part_path, resumed_from)
        self.reporter.start(f.path, total=f.size, resumed_at=resumed_from)
        transferred = 0
        failures = 0
        while part.offset < f.size:
            before = part.offset
            try:
                self._get(f, part)
            except _Retry as r:
                # Failures in a row; one that came after some progress starts a new row.
                failures = 1 if part.offset > before else failures + 1
                if failures > self.retries:
                    raise NetworkError(
                        f"downloading {f.path}: {r.reason}; gave up after {self.retries} "
                        f"retries ({part.offset} of {f.size} bytes are kept in "
                        f"{part_path.name}; run the same command again to resume)"
                    ) from None
                self.sleep(r.wait if r.wait is not None else backoff(max(failures - 1, 0)))
            finally:
                transferred += max(0, part.offset - before)
        actual = part.digest.hexdigest()
        if actual != f.sha256:
            discard(part_path, sidecar)
            raise IntegrityError(
                f"{f.path}: SHA-256 mismatch (expected {f.sha256}, received {actual}); "
                "nothing was put in place and the partial download was discarded",
                code="sha256_mismatch",
            )
        with part_path.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part_path, dest)
        discard(sidecar)
        return Fetched(f.path, transferred, resumed_from)

    def _get(self, f: RemoteFile, part: _Partial) -> None:
        """One GET from ``part.offset``. Raises _Retry for what is worth retrying and a
        :class:`CliError` for what is not."""
        token, generation = self.tokens.current()
        # Weights do not compress; identity also lets the body be read raw (no decoder).
        headers = {"Accept-Encoding": "identity"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if part.offset:
            headers["Range"] = f"bytes={part.offset}-"
        try:
            with self.api.http.stream(
                "GET", self.plan.file_url(f.path), headers=headers, follow_redirects=True
            ) as response:
                if response.status_code in (200, 206):
                    self._write(f, response, part)
                    return
                response.read()
                raise self._failure(f, response, token=token, generation=generation, part=part)
        except httpx.TransportError as e:
            raise _Retry(f"connection failed ({type(e).__name__})") from e

    def _failure(
        self,
        f: RemoteFile,
        response: httpx.Response,
        *,
        token: str | None,
        generation: int,
        part: _Partial,
    ) -> Exception:
        status = response.status_code
        if (
            status == 401
            and token is not None
            and _token_rejected(response)
            and part.renewals < MAX_RENEWALS_PER_FILE
        ):
            part.renewals += 1
            self.tokens.renew(generation)
            return _Retry("the download token was rejected", wait=0.0)
        if status == 416:
            # Our partial file is longer than the server's object: start again from zero.
            self.reporter.restart(f.path)
            part.reset()
            return _Retry("the server refused the range", wait=0.0)
        if status in RETRY_STATUSES:
            wait = retry_after(response)
            if status == 429 and wait is not None and wait > MAX_QUOTA_WAIT:
                return QuotaError(
                    f"downloading {f.path}: over quota; retry in {int(wait)} s",
                    retry_after=int(wait),
                )
            return _Retry(f"HTTP {status}", wait=wait)
        return self.api.error(response, what=f"downloading {f.path}")

    def _write(self, f: RemoteFile, response: httpx.Response, part: _Partial) -> None:
        if response.status_code == 200 and part.offset:
            # The server ignored our Range: it is sending the whole file, so take it whole.
            self.reporter.restart(f.path)
            part.reset()
        elif response.status_code == 206 and not _range_starts_at(response, part.offset):
            raise _Retry("the server answered a different range")
        received = part.offset
        with part.path.open("r+b") as fh:
            fh.seek(part.offset)
            fh.truncate()
            sink = _ChunkSink(fh, part, lambda n: self.reporter.advance(f.path, n))
            try:
                for chunk in _body(response):
                    if self.stop.is_set():
                        raise Stopped
                    received += len(chunk)
                    if received > f.size:
                        raise IntegrityError(
                            f"{f.path}: the server sent more than the {f.size} bytes the "
                            "manifest lists",
                            code="size_mismatch",
                        )
                    sink.put(chunk)
            finally:
                sink.close()
        if part.offset < f.size:
            raise _Retry("the connection closed early")


class _ChunkSink:
    """Writes and hashes received chunks on a thread of its own, so the disk and SHA-256
    (both release the GIL) overlap with reading the socket (which holds it). ``close``
    drains the queue, so afterwards ``part`` describes exactly the bytes on disk."""

    DEPTH = 64  # chunks in flight (each at most one socket read, 64 KiB with httpcore)

    def __init__(self, fh: BinaryIO, part: _Partial, advance: Callable[[int], None]) -> None:
        self._fh = fh
        self._part = part
        self._advance = advance
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="download-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so put() never blocks forever
            try:
                self._fh.write(chunk)
                self._part.digest.update(chunk)
                self._part.offset += len(chunk)
                self._advance(len(chunk))
            except BaseException as e:  # surfaced by put()/close() in the reading thread
                self._error = e

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _body(response: httpx.Response) -> Iterator[bytes]:
    """The body as it arrives. Raw when the server honoured ``identity`` (saves httpx's
    decoding and re-chunking copies, ~15% of the client's CPU); decoded otherwise, so a
    proxy that compresses anyway still yields the file's bytes."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    # A transport that buffered the body already (is_stream_consumed) serves it decoded.
    if encoding in ("", "identity") and not response.is_stream_consumed:
        return response.iter_raw()
    return response.iter_bytes()


def _token_rejected(response: httpx.Response) -> bool:
    return str(problem_of(response).get("code", "")).startswith("token_")


def _range_starts_at(response: httpx.Response, offset: int) -> bool:
    value: str = response.headers.get("content-range", "")
    unit, _, rest = value.partition(" ")
    return unit == "bytes" and rest.split("-", 1)[0] == str(offset)
