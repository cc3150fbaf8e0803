"""The floor for bench/stampede.py: an ASGI app that answers the Hub routes weightgate serves
with canned responses (captured from weightgate itself), no database, no access rule, no
audit. Never part of the product.

``WG_STUB_CANNED`` names a JSON file mapping ``"METHOD target"`` to ``{"status", "headers",
"body"}``; anything else is a 404. The GETs of ``/resolve`` answer the same 302 to the same
presigned object-store URLs, so the clients' downloads from S3 cost the same in both runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_CANNED: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {}


def _load() -> None:
    with open(os.environ["WG_STUB_CANNED"], encoding="utf-8") as fh:
        raw: dict[str, dict[str, Any]] = json.load(fh)
    for key, answer in raw.items():
        headers = [(k.lower().encode(), v.encode()) for k, v in answer["headers"].items()]
        _CANNED[key] = (int(answer["status"]), headers, answer["body"].encode("latin-1"))


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            _load()
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    status, headers, body = _CANNED.get(
        f"{scope['method']} {target}", (404, [(b"content-length", b"0")], b"")
    )
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
