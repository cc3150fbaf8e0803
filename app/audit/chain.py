"""How an audit event is hashed: SHA-256 over the previous hash and a canonical JSON form."""

from __future__ import annotations

import hashlib
import json

from app.models import AuditEvent

GENESIS = "0" * 64


def event_hash(event: AuditEvent, prev_hash: str) -> str:
    body = {
        "id": int(event.id),
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "outcome": event.outcome,
        "before": event.before,
        "after": event.after,
        "data": event.data,
        "client_addr": event.client_addr,
        "request_id": event.request_id,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()
