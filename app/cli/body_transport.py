"""How ``weightgate download`` receives file bodies: straight from the socket into the
caller's buffer.

httpx hands a body over in 64 KiB ``bytes`` objects that h11 has already copied twice; for
weight files that was most of the CLI's CPU (3.7 CPU-s per GiB against curl's 0.8,
bench/download.py). :class:`DirectTransport` sends the GET with ``http.client`` and reads the
body with ``readinto`` into one reusable buffer: the kernel copies the bytes once, into memory
that is then written to the file and hashed as it is. It follows redirects itself (the 302 to
a presigned URL), dropping the credential when the origin changes, and keeps one keep-alive
connection per origin and thread.

:class:`HttpxTransport` reads the same bodies through the command's ``httpx.Client``: it is
used behind an HTTP(S) proxy (whose configuration httpx understands and we do not repeat) and
by tests that swap the transport for an in-process app. Error answers come back as a small
``httpx.Response`` either way, so one code path parses problem+json.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from app.cli.http import TIMEOUT, USER_AGENT, ApiClient

MAX_REDIRECTS = 5
# An error page is read to find its problem+json; a longer body is not one of ours.
MAX_ERROR_BODY = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class TransportFailure(Exception):
    """The connection failed or closed early: worth retrying from where the bytes stopped."""


@dataclass(frozen=True)
class Refused:
    """An answer other than 200/206, body read (at most MAX_ERROR_BODY of it)."""

    response: httpx.Response


class Body(Protocol):
    """An answer to a GET whose status is 200 or 206, body not read yet."""

    status: int
    headers: httpx.Headers

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as the body goes; 0 at its end. Raises TransportFailure."""
        ...


class BodyTransport(Protocol):
    def get(self, url: str, headers: dict[str, str]) -> AbstractContextManager[Body | Refused]:
        """GET ``url`` following redirects: a :class:`Body` for 200/206, otherwise what
        the server said instead."""
        ...

    def close(self) -> None: ...


def make_body_transport(api: ApiClient) -> BodyTransport:
    """The direct transport, unless a proxy is configured for the server's address."""
    host = urlsplit(api.config.url).hostname or ""
    proxies = urllib.request.getproxies()
    if any(k in proxies for k in ("http", "https", "all")) and not urllib.request.proxy_bypass(
        host
    ):
        return HttpxTransport(api.http)
    return DirectTransport(api.config.url)


class _Decoded:
    """A body that arrives in pieces (httpx chunks, or decompressed output) read into
    buffers; keeps what did not fit for the next call."""

    def __init__(self, status: int, headers: httpx.Headers, pieces: Iterator[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._pieces = pieces
        self._left = memoryview(b"")

    def readinto(self, buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            if not self._left:
                try:
                    self._left = memoryview(next(self._pieces))
                except StopIteration:
                    break
                except httpx.TransportError as e:
                    raise TransportFailure(type(e).__name__) from e
                continue
            n = min(len(self._left), len(buffer) - filled)
            buffer[filled : filled + n] = self._left[:n]
            self._left = self._left[n:]
            filled += n
        return filled


class HttpxTransport:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    @contextmanager
    def get(self, url: str, headers: dict[str, str]) -> Iterator[Body | Refused]:
        try:
            with self._http.stream("GET", url, headers=headers, follow_redirects=True) as r:
                if r.status_code not in (200, 206):
                    r.read()
                    yield Refused(r)
                    return
                yield _Decoded(r.status_code, r.headers, _chunks(r))
        except httpx.TransportError as e:
            raise TransportFailure(type(e).__name__) from e

    def close(self) -> None:
        """The client belongs to the ApiClient, which closes it."""


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    # Raw when the server honoured ``identity`` (no decoder); a transport that buffered the
    # body already (is_stream_consumed) serves it decoded.
    if encoding in ("", "identity") and not response.is_stream_consumed:
        return response.iter_raw()
    return response.iter_bytes()


class _Raw:
    """An ``http.client`` response read straight into the caller's buffer."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = httpx.Headers(response.getheaders())
        self._response = response

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as e:
            raise TransportFailure(type(e).__name__) from e


class DirectTransport:
    """``http.client`` connections, one per origin and thread, reused between requests."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/") + "/"
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def _pool(self) -> dict[tuple[str, str, int], http.client.HTTPConnection]:
        pool: dict[tuple[str, str, int], http.client.HTTPConnection] | None = getattr(
            self._local, "pool", None
        )
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _connection(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        key = (scheme, host, port)
        conn = self._pool().get(key)
        if conn is None:
            timeout = TIMEOUT.read
            if scheme == "https":
                if self._ssl is None:
                    # The same trust store httpx uses (certifi, SSL_CERT_FILE/DIR).
                    self._ssl = httpx.create_ssl_context()
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            self._pool()[key] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        pool = self._pool()
        for key, c in list(pool.items()):
            if c is conn:
                del pool[key]

    def _send(
        self, url: str, headers: dict[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportFailure(f"cannot follow a redirect to {parts.scheme}: URLs")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(parts.scheme, parts.hostname, port)
        reused = conn.sock is not None
        try:
            conn.request("GET", target, headers={"User-Agent": USER_AGENT, **headers})
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self._drop(conn)
            if not reused:
                raise TransportFailure(type(e).__name__) from e
        # A keep-alive connection the server had closed meanwhile: once more, on a new one.
        conn = self._connection(parts.scheme, parts.hostname, port)
        try:
            conn.request("GET", target, headers={"User-Agent": USER_AGENT, **headers})
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self._drop(conn)
            raise TransportFailure(type(e).__name__) from e

    @contextmanager
    def get(self, url: str, headers: dict[str, str]) -> Iterator[Body | Refused]:
        url = urljoin(self._base, url.lstrip("/"))
        origin = urlsplit(url)[:2]
        headers = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            conn, response = self._send(url, headers)
            location = response.getheader("location")
            if response.status in REDIRECTS and location:
                self._read_small(conn, response)
                url = urljoin(url, location)
                if urlsplit(url)[:2] != origin:
                    # A presigned URL carries its own credential; ours stays with our server.
                    headers.pop("Authorization", None)
                continue
            if response.status not in (200, 206):
                body = self._read_small(conn, response)
                error = httpx.Response(response.status, headers=response.getheaders(), content=body)
                yield Refused(error)
                return
            try:
                yield self._body(response)
            finally:
                if not response.isclosed():
                    # Not read to its end (stopped, or more than we asked): not reusable.
                    self._drop(conn)
            return
        raise TransportFailure(f"more than {MAX_REDIRECTS} redirects")

    def _body(self, response: http.client.HTTPResponse) -> Body:
        encoding = (response.getheader("content-encoding") or "identity").strip().lower()
        if encoding in ("", "identity"):
            return _Raw(response)
        if encoding not in ("gzip", "deflate"):
            raise TransportFailure(f"unsupported Content-Encoding {encoding}")
        # A proxy compressed anyway: decode (gzip or zlib, detected from the header).
        raw = _Raw(response)
        decoder = zlib.decompressobj(wbits=47)

        def pieces() -> Iterator[bytes]:
            buf = bytearray(256 * 1024)
            while n := raw.readinto(memoryview(buf)):
                yield decoder.decompress(bytes(buf[:n]))
            yield decoder.flush()

        return _Decoded(response.status, raw.headers, pieces())

    def _read_small(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> bytes:
        try:
            body = response.read(MAX_ERROR_BODY)
        except (OSError, http.client.HTTPException) as e:
            self._drop(conn)
            raise TransportFailure(type(e).__name__) from e
        if not response.isclosed():
            self._drop(conn)
        return body

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
