"""Hand-made tokens for attack tests: any header, any payload, any (or no) signature.

Built with ``cryptography`` and ``jose`` directly, on purpose bypassing app.tokens.codec.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def es256(signing_input: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def forge(
    header: dict[str, Any],
    payload: Any,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    hmac_secret: bytes | None = None,
    raw_payload: str | None = None,
) -> str:
    """A compact JWS with exactly this header and payload, signed with ``key`` (ES256),
    ``hmac_secret`` (HS256) or not at all."""
    signing_input = f"{segment(header)}.{raw_payload or segment(payload)}"
    if key is not None:
        sig = b64(es256(signing_input.encode(), key))
    elif hmac_secret is not None:
        sig = b64(hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest())
    else:
        sig = ""
    return f"{signing_input}.{sig}"


def change_payload(token: str, **changes: Any) -> str:
    """Same header and signature, payload edited: what an attacker can do without the key."""
    h, p, s = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims.update(changes)
    return f"{h}.{segment(claims)}.{s}"


def change_signature(token: str) -> str:
    h, p, s = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    raw[10] ^= 0x01
    return f"{h}.{p}.{b64(bytes(raw))}"


def payload_of(token: str) -> dict[str, Any]:
    p = token.split(".")[1]
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    return out


def header_of(token: str) -> dict[str, Any]:
    h = token.split(".")[0]
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    return out
