"""How an audit event is hashed: SHA-256 over the previous hash and a canonical JSON form."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

GENESIS = "0" * 64


class HashedFields(Protocol):
    """What the hash covers: an :class:`~app.models.AuditEvent` or a row of its table."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def target_type(self) -> str: ...
    @property
    def target_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def before(self) -> dict[str, Any] | None: ...
    @property
    def after(self) -> dict[str, Any] | None: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def client_addr(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...


def event_hash(event: HashedFields, prev_hash: str) -> str:
    return fields_hash({name: getattr(event, name) for name in HASHED}, prev_hash)


HASHED = (
    "id",
    "at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "before",
    "after",
    "data",
    "client_addr",
    "request_id",
)


def fields_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """The hash of an event given as its :data:`HASHED` fields."""
    body = {name: fields[name] for name in HASHED}
    body["id"] = int(body["id"])
    body["at"] = body["at"].isoformat(timespec="microseconds")
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()
