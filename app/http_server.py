"""uvicorn's HTTP protocol (httptools) with a bound on each request's head.

httptools itself puts no limit on the request line and headers: a client could send a 30 MB
header and the server would buffer and parse it all. Here the bytes of a request's head are
counted as they arrive, and past :data:`MAX_HEAD_BYTES` the request is answered ``431
Request Header Fields Too Large`` and the connection closed, so at most one network read
beyond the bound is ever held. ``weightgate serve`` runs uvicorn with this protocol; request
bodies are bounded per route by :mod:`app.http_limits`.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# nginx's default (large_client_header_buffers 4 8k) is 32 KiB; a download token (at most
# 8 KiB, app.tokens.codec) fits twice over, in the URL or a header.
MAX_HEAD_BYTES = 64 * 1024


def _refusal() -> bytes:
    body = json.dumps(
        {
            "type": "https://weightgate.dev/problems/request_head_too_large",
            "title": "Request header fields too large",
            "status": 431,
            "code": "request_head_too_large",
            "detail": f"the request line and headers may take at most {MAX_HEAD_BYTES} bytes",
        }
    ).encode()
    return b"".join(
        [
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ]
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # between a message's first byte and the end of its headers
        self._head_bytes = 0
        self._refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        # Still in the head after parsing this read: every byte of it belonged to the head.
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._refused = True
                self.transport.write(_refusal())
                self.transport.close()
