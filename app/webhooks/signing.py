"""How a webhook delivery is signed, and how a receiver checks it.

``X-Weightgate-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` where
``<timestamp>`` is the ``X-Weightgate-Timestamp`` header (Unix seconds) and ``<body>`` the
exact bytes sent. Signing the timestamp lets receivers refuse replays of an old delivery;
the ``X-Weightgate-Delivery`` idempotency id lets them drop a retried one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "X-Weightgate-Signature"
TIMESTAMP_HEADER = "X-Weightgate-Timestamp"
EVENT_HEADER = "X-Weightgate-Event"
DELIVERY_HEADER = "X-Weightgate-Delivery"


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, *, timestamp: str, body: bytes, header: str, now: float, tolerance: float = 300
) -> bool:
    """What a receiver does (documented, and used by the tests' receiver)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, ts, body), header)


def signed_headers(
    *, secret: str, event_type: str, event_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
