"""The release keys a user pinned (``weightgate trust``), kept in
``<config dir>/weightgate/trusted-release-keys.json``.

Pinning is explicit: ``trust add <server>`` fetches the server's
``/.well-known/release-keys.json`` once and prints each key's fingerprint so it can be
compared with what the lab publishes elsewhere; ``trust add <file>`` pins a PEM public key
received out of band. ``weightgate verify`` then checks signatures against these keys only,
offline. Running ``trust add <server>`` again pins keys the lab rotated to since, and picks
up the releases whose signatures the server revoked.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.cli import http
from app.cli.config import config_path
from app.cli.errors import CliError

WELL_KNOWN = "/.well-known/release-keys.json"


def trust_path() -> Path:
    return config_path().parent / "trusted-release-keys.json"


def key_id_of(public_pem: str) -> str:
    """model-signing's key hint: SHA-256 of the PEM SubjectPublicKeyInfo, normalised."""
    public = load_public(public_pem)
    canonical = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(canonical).hexdigest()


def load_public(public_pem: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(public_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise CliError("not a PEM public key", code="bad_public_key") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise CliError("release keys are ECDSA P-256 public keys", code="bad_public_key")
    return key


@dataclass
class PinnedKey:
    key_id: str
    public_key: str
    source: str
    pinned_at: str
    not_before: str | None = None
    not_after: str | None = None


@dataclass
class TrustStore:
    keys: list[PinnedKey] = field(default_factory=list)
    # Revoked releases as the pinned servers last said: {"model", "version", "revision",
    # "revoked_at", "reason", "key_ids", "source"}.
    revoked: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls) -> TrustStore:
        path = trust_path()
        try:
            raw = json.loads(path.read_text("utf-8"))
            return cls(
                keys=[PinnedKey(**k) for k in raw.get("keys", [])],
                revoked=list(raw.get("revoked", [])),
            )
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError) as e:
            raise CliError(f"{path} is damaged ({e}); remove it and pin your keys again") from e

    def save(self) -> Path:
        path = trust_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trust-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
        return path

    def by_id(self, key_id: str) -> PinnedKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    def pin(self, key: PinnedKey) -> bool:
        """Add or refresh a key; True if it was not pinned before."""
        existing = self.by_id(key.key_id)
        if existing is None:
            self.keys.append(key)
            return True
        existing.not_before, existing.not_after = key.not_before, key.not_after
        return False

    def revocation(self, model: str, version: str) -> dict[str, Any] | None:
        return next(
            (r for r in self.revoked if r.get("model") == model and r.get("version") == version),
            None,
        )

    def remove(self, prefix: str) -> list[PinnedKey]:
        gone = [k for k in self.keys if k.key_id.startswith(prefix)]
        self.keys = [k for k in self.keys if not k.key_id.startswith(prefix)]
        return gone


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def pin_file(store: TrustStore, path: Path) -> list[tuple[PinnedKey, bool]]:
    try:
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}", code="bad_public_key") from e
    key = PinnedKey(
        key_id=key_id_of(text), public_key=text, source=str(path.resolve()), pinned_at=_now()
    )
    return [(key, store.pin(key))]


def pin_server(store: TrustStore, url: str) -> list[tuple[PinnedKey, bool]]:
    base = url.rstrip("/")
    try:
        with http.make_httpx_client(base) as client:
            resp = client.get(WELL_KNOWN)
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach {base}: {e}", code="network") from e
    if resp.status_code != 200:
        raise CliError(
            f"{base}{WELL_KNOWN} answered {resp.status_code}; is this a weightgate server?",
            code="no_release_keys",
        )
    try:
        doc = resp.json()
        published = list(doc["keys"])
        revoked = list(doc.get("revoked", []))
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(f"{base}{WELL_KNOWN} is not a release-keys document", code="bad_doc") from e
    pinned = []
    for entry in published:
        key = PinnedKey(
            key_id=key_id_of(str(entry["public_key"])),
            public_key=str(entry["public_key"]),
            source=base,
            pinned_at=_now(),
            not_before=entry.get("not_before"),
            not_after=entry.get("not_after"),
        )
        if key.key_id != entry.get("key_id"):
            raise CliError(
                f"{base} lists key {entry.get('key_id')} whose public key has id {key.key_id}",
                code="bad_doc",
            )
        pinned.append((key, store.pin(key)))
    store.revoked = [r for r in store.revoked if r.get("source") != base] + [
        {**r, "source": base} for r in revoked
    ]
    return pinned
