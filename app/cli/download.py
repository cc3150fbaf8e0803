"""Fetching a release's files: one token shared by parallel workers, resumable partial files,
SHA-256 before anything is put in place.

For each file ``<dir>/<path>`` the bytes go to ``<path>.part`` next to a sidecar
(app.cli.download_file). A later run (after a crash, Ctrl-C or a dropped connection) asks only
for the missing bytes with ``Range``. A large file may be fetched as several ranges over
parallel connections. Only a complete file whose SHA-256 matches is renamed into place
(atomically); a mismatch deletes the partial file and fails with :class:`IntegrityError`.
Only 200/206 bodies are ever written: an error page can never end up inside a weight file.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.cli import body_transport
from app.cli.body_transport import Body, BodyTransport, Refused, TransportFailure
from app.cli.download_file import FileDownload, Segment
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
from app.cli.plan import Plan, RemoteFile
from app.cli.progress import Reporter

# A token that keeps being rejected right after renewal is not expiring: it is refused.
MAX_RENEWALS_PER_FILE = 2
# Scoping a token to paths is least privilege, but a token only holds so many paths.
MAX_TOKEN_PATHS = 128
# One buffer per connection: the socket reads into it, the file and the digest take it as is.
BUFFER = 256 * 1024  # fits the L2 cache: the bytes are still there when written
# A file is fetched over several connections only in ranges of at least this size.
MIN_SPLIT = 32 * 1024 * 1024


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


class Abandoned(Exception):
    """Another segment of the same file failed for good: this one stops too."""


class _Retry(Exception):
    """A transient failure: try again after a pause (``wait`` when the server said so)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class FileFetcher:
    """Fetches segments of files; several threads may share one fetcher."""

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
        transport: BodyTransport | None = None,
        min_split: int = MIN_SPLIT,
    ) -> None:
        self.api = api
        self.stop = stop or threading.Event()
        self.tokens = tokens
        self.plan = plan
        self.root = root
        self.reporter = reporter
        self.retries = retries
        self.sleep = sleep
        self.transport = transport or body_transport.make_body_transport(api)
        self.min_split = min_split
        self._buffers = threading.local()

    def fetch(self, f: RemoteFile) -> Fetched:
        """The whole file over one connection, in this thread."""
        job = self.open(f, connections=1)
        try:
            for seg in job.segments:
                self.fetch_segment(job, seg)
        except BaseException as e:
            self.give_up(job, e)
            raise
        return self.finish(job)

    def open(self, f: RemoteFile, *, connections: int) -> FileDownload:
        job = FileDownload(f, self.root, connections=connections, min_split=self.min_split)
        self.reporter.start(f.path, total=f.size, resumed_at=job.resumed_from)
        return job

    def give_up(self, job: FileDownload, error: BaseException) -> None:
        """After a segment failed: keep the partial file unless its bytes are wrong."""
        job.failed = True
        if isinstance(error, IntegrityError):
            job.abandon()
        else:
            job.suspend()

    def finish(self, job: FileDownload) -> Fetched:
        f = job.file
        actual = job.hexdigest()
        if actual != f.sha256:
            job.abandon()
            raise IntegrityError(
                f"{f.path}: SHA-256 mismatch (expected {f.sha256}, received {actual}); "
                "nothing was put in place and the partial download was discarded",
                code="sha256_mismatch",
            )
        job.complete()
        return Fetched(f.path, job.received() - job.resumed_from, job.resumed_from)

    def fetch_segment(self, job: FileDownload, seg: Segment) -> None:
        """Fetch ``seg`` to its end, retrying what is worth retrying; raises a
        :class:`CliError` (or Stopped/Abandoned) otherwise."""
        failures = 0
        while seg.pos < seg.end:
            before = seg.pos
            try:
                self._get(job, seg)
            except _Retry as r:
                # Failures in a row; one that came after some progress starts a new row.
                failures = 1 if seg.pos > before else failures + 1
                if failures > self.retries:
                    raise NetworkError(
                        f"downloading {job.file.path}: {r.reason}; gave up after "
                        f"{self.retries} retries ({job.received()} of {job.file.size} bytes "
                        f"are kept in {job.part.name}; run the same command again to resume)"
                    ) from None
                self.sleep(r.wait if r.wait is not None else backoff(max(failures - 1, 0)))

    def _get(self, job: FileDownload, seg: Segment) -> None:
        """One GET from ``seg.pos``. Raises _Retry for what is worth retrying and a
        :class:`CliError` for what is not."""
        token, generation = self.tokens.current()
        # Weights do not compress; identity also lets the body be read raw (no decoder).
        headers = {"Accept-Encoding": "identity"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if not job.growing:
            headers["Range"] = f"bytes={seg.pos}-{seg.end - 1}"
        elif seg.pos:
            headers["Range"] = f"bytes={seg.pos}-"
        try:
            with self.transport.get(self.plan.file_url(job.file.path), headers) as answer:
                if isinstance(answer, Refused):
                    raise self._failure(job, answer.response, token=token, generation=generation)
                self._receive(job, seg, answer)
        except TransportFailure as e:
            raise _Retry(f"connection failed ({e})") from e

    def _failure(
        self, job: FileDownload, response: httpx.Response, *, token: str | None, generation: int
    ) -> Exception:
        f = job.file
        status = response.status_code
        if (
            status == 401
            and token is not None
            and _token_rejected(response)
            and job.renewals < MAX_RENEWALS_PER_FILE
        ):
            job.renewals += 1
            self.tokens.renew(generation)
            return _Retry("the download token was rejected", wait=0.0)
        if status == 416 and job.growing:
            # Our partial file is longer than the server's object: start again from zero.
            self.reporter.restart(f.path)
            job.restart()
            return _Retry("the server refused the range", wait=0.0)
        if status == 416:
            return IntegrityError(
                f"{f.path}: the server holds fewer than the {f.size} bytes the manifest lists",
                code="size_mismatch",
            )
        if status in RETRY_STATUSES:
            wait = retry_after(response)
            if status == 429 and wait is not None and wait > MAX_QUOTA_WAIT:
                return QuotaError(
                    f"downloading {f.path}: over quota; retry in {int(wait)} s",
                    retry_after=int(wait),
                )
            return _Retry(f"HTTP {status}", wait=wait)
        return self.api.error(response, what=f"downloading {f.path}")

    def _buffer(self) -> memoryview:
        buf: memoryview | None = getattr(self._buffers, "buf", None)
        if buf is None:
            buf = self._buffers.buf = memoryview(bytearray(BUFFER))
        return buf

    def _receive(self, job: FileDownload, seg: Segment, body: Body) -> None:
        f = job.file
        skip = 0
        if body.status == 200 and seg.pos:
            # The server ignored our Range and sends the whole file.
            if job.growing:
                self.reporter.restart(f.path)
                job.restart()
            else:
                skip = seg.pos  # read past what this segment does not need
        elif body.status == 206 and not _range_starts_at(body.headers, seg.pos):
            raise _Retry("the server answered a different range")
        buf = self._buffer()
        while skip:
            n = body.readinto(buf[: min(len(buf), skip)])
            if not n:
                raise _Retry("the connection closed early")
            skip -= n
        while seg.pos < seg.end:
            if self.stop.is_set():
                raise Stopped
            if job.failed:
                raise Abandoned
            n = body.readinto(buf[: min(len(buf), seg.end - seg.pos)])
            if not n:
                raise _Retry("the connection closed early")
            job.write(seg, buf[:n])
            self.reporter.advance(f.path, n)
        if seg.end == f.size and body.readinto(buf[:1]):
            raise IntegrityError(
                f"{f.path}: the server sent more than the {f.size} bytes the manifest lists",
                code="size_mismatch",
            )


def _token_rejected(response: httpx.Response) -> bool:
    return str(problem_of(response).get("code", "")).startswith("token_")


def _range_starts_at(headers: httpx.Headers, offset: int) -> bool:
    value: str = headers.get("content-range", "")
    unit, _, rest = value.partition(" ")
    return unit == "bytes" and rest.split("-", 1)[0] == str(offset)
