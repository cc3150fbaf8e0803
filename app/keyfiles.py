"""Private keys kept as PEM files: parsing, generating, and a directory of key files named by
the instant they start signing (``<prefix>-YYYYMMDDTHHMMSSZ.pem``). Shared by the token keys
(:mod:`app.tokens.keys`) and the release-signing keys (:mod:`app.signing.keys`)."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_STAMP = "%Y%m%dT%H%M%SZ"


class KeyConfigError(Exception):
    """The configured keys cannot be used (unreadable, not P-256, none at all)."""


def parse_private_pem(pem: bytes | str, *, source: str) -> ec.EllipticCurvePrivateKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise KeyConfigError(f"{source}: not an unencrypted PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyConfigError(f"{source}: ES256 needs a P-256 (prime256v1) EC key")
    return key


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_file_name(active_from: datetime, prefix: str = "es256") -> str:
    return f"{prefix}-{active_from.astimezone(UTC).strftime(_STAMP)}.pem"


def activation_of(name: str, prefix: str = "es256") -> datetime | None:
    m = re.fullmatch(re.escape(prefix) + r"-(\d{8}T\d{6}Z)\.pem", name)
    if m is None:
        return None
    return datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC)


class KeyDirectory:
    """Key files in one directory, parsed once per (name, mtime). ``prefix`` tells the kinds
    of key apart (token keys ``es256-…``, release-signing keys ``release-p256-…``)."""

    def __init__(self, path: Path, prefix: str = "es256") -> None:
        self.path = path
        self.prefix = prefix
        self._parsed: dict[tuple[str, int], ec.EllipticCurvePrivateKey] = {}

    def scan(self) -> list[tuple[datetime, str, ec.EllipticCurvePrivateKey]]:
        """(activation, file name, key), oldest activation first."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            at = activation_of(name, self.prefix)
            if at is None:
                continue
            file = self.path / name
            try:
                mtime = file.stat().st_mtime_ns
                cached = self._parsed.get((name, mtime))
                if cached is None:
                    cached = parse_private_pem(file.read_bytes(), source=str(file))
                    self._parsed[(name, mtime)] = cached
            except FileNotFoundError:
                continue  # removed while we looked (a rotation pruning it)
            found.append((at, name, cached))
        found.sort(key=lambda t: (t[0], t[1]))
        return found

    @contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock across processes (first-start generation, rotation)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def write(self, key: ec.EllipticCurvePrivateKey, active_from: datetime) -> Path:
        """Write a key file readable by its owner only, atomically (temp file + rename)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.path / key_file_name(active_from, self.prefix)
        if final.exists():
            raise KeyConfigError(f"{final.name} already exists; wait a second and retry")
        tmp = self.path / f".{final.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem(key))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final
