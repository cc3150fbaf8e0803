"""The signing keys: where they come from, which one signs, which ones still verify, the JWKS.

Keys are ES256 (P-256) private keys in PEM. Their ``kid`` is the RFC 7638 thumbprint of the
public key, so every replica that loads the same PEM derives the same ``kid`` with no shared
metadata.

Two sources, in order of precedence:

- ``WEIGHTGATE_SIGNING_KEY_PEM``: one or more PEM blocks. The first signs; the others only
  verify (an operator rotates by prepending a new key, and removes the old one once the
  longest token lifetime has passed).
- the keys directory (``WEIGHTGATE_KEYS_DIR``, default ``<data dir>/keys``): files named
  ``es256-<activation, UTC, YYYYMMDDTHHMMSSZ>.pem``. The newest key whose activation time has
  come signs. A key stops signing when its successor activates and keeps verifying for the
  longest token lifetime after that (plus the clock leeway), then drops out of the set and
  the JWKS. ``weightgate keys rotate`` writes a new file and deletes the ones past that
  point. Replicas re-read the directory every few seconds and whenever they meet an unknown
  ``kid``, so a key rotated on a shared volume (or a Kubernetes Secret) is picked up without
  a restart; ``--activate-in`` lets every replica learn a key before it starts signing.

In the embedded default (no key configured, not ``production``) a first key is generated on
first start. Nothing here touches JWTs: :mod:`app.tokens.codec` does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request

from app.keyfiles import (
    KeyConfigError,
    KeyDirectory,
    activation_of,
    key_file_name,
    new_private_key,
    parse_private_pem,
    private_pem,
)
from app.parts import parts_of
from app.settings import Settings

__all__ = [
    "KeyConfigError",
    "KeyDirectory",
    "activation_of",
    "key_file_name",
    "new_private_key",
    "parse_private_pem",
    "private_pem",
]

ES256_PREFIX = "es256"
_PEM_BLOCK = re.compile(
    r"-----BEGIN ((?:EC )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL | re.ASCII
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the key's ``kid``."""
    canonical = json.dumps(public_jwk(public), sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True)
class SigningKey:
    """One key pair. ``active_from`` is when it may start signing (``None``: always);
    ``verify_until`` when its last token has expired (``None``: while it is configured)."""

    kid: str
    private: ec.EllipticCurvePrivateKey
    source: str
    active_from: datetime | None = None
    verify_until: datetime | None = None

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()

    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.public), "kid": self.kid, "alg": "ES256", "use": "sig"}


def keys_from_env(text: str) -> list[SigningKey]:
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise KeyConfigError("WEIGHTGATE_SIGNING_KEY_PEM holds no PEM private key")
    keys = []
    for i, block in enumerate(blocks):
        private = parse_private_pem(block, source=f"WEIGHTGATE_SIGNING_KEY_PEM[{i}]")
        keys.append(SigningKey(kid=thumbprint(private.public_key()), private=private, source="env"))
    return keys


def lifecycle(
    found: list[tuple[datetime, str, ec.EllipticCurvePrivateKey]], *, retention: timedelta
) -> list[SigningKey]:
    """Give each directory key its verification window: until its successor's activation
    plus ``retention`` (the longest token lifetime and the clock leeway)."""
    keys = []
    for i, (at, name, private) in enumerate(found):
        successor = found[i + 1][0] if i + 1 < len(found) else None
        keys.append(
            SigningKey(
                kid=thumbprint(private.public_key()),
                private=private,
                source=name,
                active_from=at,
                verify_until=successor + retention if successor else None,
            )
        )
    return keys


@dataclass(frozen=True)
class KeyStatus:
    key: SigningKey
    signing: bool
    verifying: bool


class KeySet:
    """The keys of this process. Thread-safe: a reload swaps in a new immutable list."""

    def __init__(
        self,
        *,
        static: list[SigningKey] | None = None,
        directory: KeyDirectory | None = None,
        retention: timedelta,
        reload_seconds: float = 10.0,
    ) -> None:
        if (static is None) == (directory is None):
            raise ValueError("a key set has either static keys or a directory")
        self._directory = directory
        self._retention = retention
        self._reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = static or []
        self._loaded = time.monotonic()
        if directory is not None:
            self.reload()

    @property
    def directory(self) -> KeyDirectory | None:
        return self._directory

    def reload(self) -> None:
        if self._directory is None:
            return
        with self._lock:
            self._keys = lifecycle(self._directory.scan(), retention=self._retention)
            self._loaded = time.monotonic()

    def _maybe_reload(self, *, force: bool = False) -> None:
        if self._directory is None:
            return
        # A forced reload (unknown kid) is still limited to one a second, so a flood of
        # forged kids cannot turn into a flood of directory scans.
        interval = 1.0 if force else self._reload_seconds
        if time.monotonic() - self._loaded >= interval:
            self.reload()

    def statuses(self, now: datetime) -> list[KeyStatus]:
        self._maybe_reload()
        return self._statuses(self._keys, now)

    @staticmethod
    def _statuses(keys: list[SigningKey], now: datetime) -> list[KeyStatus]:
        usable = [k for k in keys if k.active_from is None or k.active_from <= now]
        signer = usable[0] if usable and usable[0].source == "env" else None
        if signer is None and usable:
            signer = usable[-1]
        return [
            KeyStatus(
                key=k,
                signing=k is signer,
                verifying=k.verify_until is None or k.verify_until > now,
            )
            for k in keys
        ]

    def signing_key(self, now: datetime) -> SigningKey:
        for status in self.statuses(now):
            if status.signing:
                return status.key
        raise KeyConfigError("no signing key is active yet")

    def verification_key(self, kid: str, now: datetime) -> SigningKey | None:
        """The key with this ``kid`` if it still verifies; only ever one of ours."""
        self._maybe_reload()
        found = self._find(kid, now)
        if found is None and self._directory is not None:
            self._maybe_reload(force=True)
            found = self._find(kid, now)
        return found

    def _find(self, kid: str, now: datetime) -> SigningKey | None:
        for k in self._keys:
            if k.kid == kid:
                return k if k.verify_until is None or k.verify_until > now else None
        return None

    def jwks(self, now: datetime) -> dict[str, Any]:
        """Every key that verifies now, including one announced but not yet signing."""
        return {"keys": [s.key.jwk() for s in self.statuses(now) if s.verifying]}


def retention_for(settings: Settings) -> timedelta:
    longest = max(settings.token_max_ttl, settings.partner_token_ttl)
    return timedelta(seconds=longest + settings.token_leeway_seconds)


def load_key_set(settings: Settings, *, now: datetime, generate: bool | None = None) -> KeySet:
    """The key set the settings describe; generates a first key in the embedded default."""
    retention = retention_for(settings)
    if settings.signing_key_pem:
        return KeySet(static=keys_from_env(settings.signing_key_pem), retention=retention)
    directory = KeyDirectory(settings.effective_keys_dir)
    if generate is None:
        generate = settings.environment != "production"
    if not generate:
        # Only read: the directory may be a read-only mount (a Kubernetes Secret, a volume
        # mounted :ro), where even the lock file cannot be created.
        if not directory.scan():
            raise KeyConfigError(
                f"no signing key in {directory.path}: run `weightgate keys rotate` or set "
                "WEIGHTGATE_SIGNING_KEY_PEM"
            )
        return KeySet(
            directory=directory, retention=retention, reload_seconds=settings.keys_reload_seconds
        )
    with directory.locked():
        if not directory.scan():
            directory.write(new_private_key(), now)
    return KeySet(
        directory=directory, retention=retention, reload_seconds=settings.keys_reload_seconds
    )


def rotate(
    settings: Settings, *, now: datetime, activate_in: int = 0
) -> tuple[SigningKey, list[str]]:
    """Write a new key (signing from ``now + activate_in``) and delete keys past their
    verification window. Returns the new key and the names of the deleted files."""
    if settings.signing_key_pem:
        raise KeyConfigError(
            "keys come from WEIGHTGATE_SIGNING_KEY_PEM: rotate by prepending a new PEM block "
            "there (the first signs) and removing the old one after the longest token lifetime"
        )
    directory = KeyDirectory(settings.effective_keys_dir)
    active_from = (now + timedelta(seconds=max(0, activate_in))).replace(microsecond=0)
    with directory.locked():
        directory.write(new_private_key(), active_from)
        keys = lifecycle(directory.scan(), retention=retention_for(settings))
        removed = []
        for k in keys:
            if k.verify_until is not None and k.verify_until <= now:
                (directory.path / k.source).unlink(missing_ok=True)
                removed.append(k.source)
    new = next(k for k in keys if k.active_from == active_from)
    return new, removed


def describe(statuses: list[KeyStatus]) -> list[Mapping[str, Any]]:
    """Rows for ``weightgate keys list``."""
    return [
        {
            "kid": s.key.kid,
            "source": s.key.source,
            "active_from": s.key.active_from,
            "verify_until": s.key.verify_until,
            "signing": s.signing,
            "verifying": s.verifying,
        }
        for s in statuses
    ]


def get_keys(request: Request) -> KeySet:
    return parts_of(request.app).keys


KeysDep = Annotated[KeySet, Depends(get_keys)]
