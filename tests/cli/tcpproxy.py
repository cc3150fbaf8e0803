"""A small TCP proxy for tests: forwards bytes both ways, records the HTTP request heads it
sees, and can cut a connection after N bytes of response (a real dropped connection: the
socket is reset mid-body, exactly what a flaky network or a load balancer timeout does)."""

from __future__ import annotations

import re
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

_HEAD = re.compile(rb"^(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/1\.[01]\r\n(.*?)\r\n\r\n", re.DOTALL)


@dataclass
class SeenRequest:
    method: str
    target: str
    headers: dict[str, str]


@dataclass
class TcpProxy:
    upstream: tuple[str, int]
    listener: socket.socket
    requests: list[SeenRequest] = field(default_factory=list)
    # Armed: the first connection whose responses pass this many bytes is reset there.
    drop_after: int | None = None
    drops: int = 0
    bytes_to_clients: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: bool = False

    @property
    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def gets(self, path_part: str) -> list[SeenRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and path_part in r.target]

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_to_clients = 0

    def serve(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
        self._responses(upstream, client)

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                m = _HEAD.match(data)
                if m:
                    headers = {}
                    for line in m.group(3).split(b"\r\n"):
                        name, _, value = line.decode("latin-1").partition(":")
                        headers[name.strip().lower()] = value.strip()
                    with self._lock:
                        self.requests.append(
                            SeenRequest(m.group(1).decode(), m.group(2).decode(), headers)
                        )
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _cut_at(self, sent: int, incoming: int) -> int | None:
        """Where to cut this connection's response stream, if here; disarms the proxy."""
        with self._lock:
            limit = self.drop_after
            if limit is None or sent + incoming < limit:
                return None
            self.drop_after = None
            self.drops += 1
            return limit

    def _responses(self, upstream: socket.socket, client: socket.socket) -> None:
        sent = 0
        try:
            while data := upstream.recv(65536):
                limit = self._cut_at(sent, len(data))
                if limit is not None:
                    client.sendall(data[: limit - sent])
                    with self._lock:
                        self.bytes_to_clients += limit - sent
                    # SO_LINGER 0: close with RST, so the client sees a broken connection;
                    # shutdown first, or the other pump thread's recv keeps the socket alive.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    with suppress(OSError):
                        client.shutdown(socket.SHUT_RDWR)
                    break
                client.sendall(data)
                sent += len(data)
                with self._lock:
                    self.bytes_to_clients += len(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.close()


@contextmanager
def tcp_proxy(upstream_url: str) -> Iterator[TcpProxy]:
    host_port = upstream_url.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.partition(":")
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = TcpProxy((host, int(port)), listener)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy._closing = True
        listener.close()
        thread.join(5)
