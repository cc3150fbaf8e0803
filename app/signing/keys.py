"""The release-signing keys: where they come from, which one signs, and what is published.

A release signature must verify for as long as anyone holds the weights, so unlike the token
keys (:mod:`app.tokens.keys`) a release key never stops *verifying*: rotation only stops it
*signing*. Each key is published at ``/.well-known/release-keys.json`` with the period in
which it signed (``not_before`` .. ``not_after``), so a verifier can tell a signature made
by a retired key after its retirement from an old, good one.

A key's id is the SHA-256 (hex) of its public key in PEM SubjectPublicKeyInfo form: the
``verificationMaterial.publicKey.hint`` that the OpenSSF model-signing format puts in every
bundle, so a signature names its key without any metadata of ours.

Sources, in order of precedence:

- ``WEIGHTGATE_RELEASE_SIGNING_KEY_PEM``: PEM blocks; the first signs, the others are
  earlier keys kept for publication (their periods are not known: published open-ended).
- a configured key (:mod:`app.signing.configured`): a PEM key file, or a key in an HSM
  or token through PKCS #11, optionally with a certificate chain. It signs; the directory
  records it (``.pub``, and ``.crt`` for its chain) so that it stays published after the
  operator configures another.
- the directory ``WEIGHTGATE_RELEASE_KEYS_DIR`` (default ``<data dir>/release-keys``):
  ``release-p256-<activation>.pem`` private keys (the newest active one signs) and
  ``release-p256-<activation>.pub`` public keys of retired keys whose private half the
  operator destroyed (``weightgate release-keys retire``) or never held (configured keys).

Generated on first start outside production; required in production. Never the token key.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request

from app.keyfiles import (
    KeyConfigError,
    KeyDirectory,
    activation_of,
    new_private_key,
    parse_private_pem,
)
from app.parts import parts_of
from app.settings import Settings
from app.signing.certificates import chain_pem, check_valid, parse_chain

PREFIX = "release-p256"
_PUBLIC = re.compile(r"^release-p256-(\d{8}T\d{6}Z)\.pub$")
CHAIN_SUFFIX = ".crt"  # beside a key's file: the certificate chain it signed with
_PEM_BLOCK = re.compile(
    r"-----BEGIN ((?:EC )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL | re.ASCII
)


class Signer(Protocol):
    """Whatever holds the private half: signs bytes with ECDSA P-256/SHA-256 (DER)."""

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class SoftwareSigner:
    private: ec.EllipticCurvePrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, ec.ECDSA(hashes.SHA256()))


def public_pem(public: ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """model-signing's key hint: SHA-256 of the PEM SubjectPublicKeyInfo."""
    return hashlib.sha256(public_pem(public)).hexdigest()


@dataclass(frozen=True)
class ReleaseKey:
    key_id: str
    public: ec.EllipticCurvePublicKey
    signer: Signer | None  # None: retired, only its public half is kept
    source: str
    not_before: datetime | None = None
    not_after: datetime | None = None  # when its successor started signing
    # Leaf first: bundles then carry the chain instead of a key hint (certificates.py).
    certificates: tuple[x509.Certificate, ...] = ()

    def published(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "algorithm": "ecdsa-p256-sha256",
            "public_key": public_pem(self.public).decode("ascii"),
            "not_before": utc_text(self.not_before),
            "not_after": utc_text(self.not_after),
            "certificate_chain": chain_pem(self.certificates) if self.certificates else None,
        }


def utc_text(at: datetime | None) -> str | None:
    """``2026-12-03T15:00:00Z``, as the rest of the API writes instants."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None


def parse_public_pem(data: bytes, *, source: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyConfigError(f"{source}: not a PEM public key") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeyConfigError(f"{source}: release keys are P-256 (prime256v1) EC keys")
    return key


class ReleaseKeySet:
    """The release keys of this process, oldest first. Rotation happens between publishes
    on one machine (``weightgate release-keys rotate``), so the set is re-read from its
    directory at each publish and each request for the published keys."""

    def __init__(
        self,
        *,
        static: list[ReleaseKey] | None = None,
        directory: Path | None = None,
        configured: ReleaseKey | None = None,
    ):
        if (static is None) == (directory is None):
            raise ValueError("a release key set has either static keys or a directory")
        if configured is not None and directory is None:
            raise ValueError("a configured release key is recorded in a directory")
        self._static = static
        self._directory = directory
        self._configured = configured

    @property
    def configured(self) -> ReleaseKey | None:
        return self._configured

    @property
    def directory(self) -> Path | None:
        return self._directory

    def listed(self) -> list[ReleaseKey]:
        if self._static is not None:
            return self._static
        assert self._directory is not None
        keys = scan(self._directory)
        c = self._configured
        if c is None:
            return keys
        # The directory holds its record and so its period; the configured key signs.
        listed = [
            replace(k, signer=c.signer, source=c.source, certificates=c.certificates)
            if k.key_id == c.key_id
            else k
            for k in keys
        ]
        if not any(k.key_id == c.key_id for k in keys):
            listed.append(c)  # not recorded yet (``release-keys list`` before a restart)
        return listed

    def signing_key(self, now: datetime) -> ReleaseKey:
        keys = self.listed()
        if self._configured is not None:
            configured_id = self._configured.key_id
            key = next((k for k in keys if k.key_id == configured_id), self._configured)
            if key.certificates:
                # Checked at startup; a long-running server can outlive its certificate.
                check_valid(key.certificates[0], now, source="release signing")
            return key
        if self._static is not None:
            signer = keys[0] if keys and keys[0].signer is not None else None
        else:
            usable = [
                k
                for k in keys
                if k.signer is not None and (k.not_before is None or k.not_before <= now)
            ]
            signer = usable[-1] if usable else None
        if signer is None:
            raise KeyConfigError("no release-signing key is active")
        return signer

    def by_id(self, wanted: str) -> ReleaseKey | None:
        return next((k for k in self.listed() if k.key_id == wanted), None)

    def document(self) -> dict[str, Any]:
        """``/.well-known/release-keys.json`` (without the revocations)."""
        return {"keys": [k.published() for k in self.listed()]}


def scan(directory: Path) -> list[ReleaseKey]:
    """Private and public key files of a directory, with their signing periods: each key
    signs from its activation until the next key's activation."""
    found: list[tuple[datetime, str, ec.EllipticCurvePublicKey, Signer | None]] = []
    for at, name, private in KeyDirectory(directory, PREFIX).scan():
        found.append((at, name, private.public_key(), SoftwareSigner(private)))
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        names = []
    for name in names:
        m = _PUBLIC.match(name)
        if m is None:
            continue
        stamp = activation_of(f"{PREFIX}-{m.group(1)}.pem", PREFIX)
        assert stamp is not None
        try:
            public = parse_public_pem((directory / name).read_bytes(), source=name)
        except FileNotFoundError:
            continue
        found.append((stamp, name, public, None))
    found.sort(key=lambda t: (t[0], t[1]))
    keys = []
    for i, (at, name, public, signer) in enumerate(found):
        successor = found[i + 1][0] if i + 1 < len(found) else None
        keys.append(
            ReleaseKey(
                key_id=key_id(public),
                public=public,
                signer=signer,
                source=name,
                not_before=at,
                not_after=successor,
                certificates=recorded_chain(directory, name),
            )
        )
    return keys


def chain_file(directory: Path, key_file: str) -> Path:
    return directory / (key_file.rsplit(".", 1)[0] + CHAIN_SUFFIX)


def recorded_chain(directory: Path, key_file: str) -> tuple[x509.Certificate, ...]:
    """The certificate chain recorded beside a key file, if any (not re-validated: it is
    published as the key signed with it, expired or not)."""
    try:
        data = chain_file(directory, key_file).read_bytes()
    except FileNotFoundError:
        return ()
    return parse_chain(data, source=chain_file(directory, key_file).name)


def keys_from_env(text: str) -> list[ReleaseKey]:
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise KeyConfigError("WEIGHTGATE_RELEASE_SIGNING_KEY_PEM holds no PEM private key")
    keys = []
    for i, block in enumerate(blocks):
        private = parse_private_pem(block, source=f"WEIGHTGATE_RELEASE_SIGNING_KEY_PEM[{i}]")
        keys.append(
            ReleaseKey(
                key_id=key_id(private.public_key()),
                public=private.public_key(),
                signer=SoftwareSigner(private),
                source="env" if i == 0 else f"env[{i}]",
            )
        )
    return keys


def check_distinct(release: ReleaseKeySet, token_publics: list[ec.EllipticCurvePublicKey]) -> None:
    """Refuse a release key that is also a token key: a leaked token key (a replica's
    memory, a Kubernetes Secret mounted in every pod) must not be able to sign weights."""
    token_ids = {key_id(p) for p in token_publics}
    for k in release.listed():
        if k.key_id in token_ids:
            raise KeyConfigError(
                f"release key {k.key_id[:16]} ({k.source}) is also a token-signing key; "
                "release signatures need a key of their own"
            )


def rotate(
    settings: Settings, *, now: datetime, activate_in: int = 0
) -> tuple[ReleaseKey, list[ReleaseKey]]:
    """Write a new release key signing from ``now + activate_in``. Earlier keys stay: their
    signatures keep verifying. Returns the new key and every key now in the directory."""
    if settings.release_signing_key_file or settings.release_pkcs11_module:
        raise KeyConfigError(
            "the release key is configured (WEIGHTGATE_RELEASE_SIGNING_KEY_FILE or "
            "WEIGHTGATE_RELEASE_PKCS11_*): rotate by configuring a new key (a new file, or a "
            "new key label in the token) and restarting; earlier keys stay published"
        )
    if settings.release_signing_key_pem:
        raise KeyConfigError(
            "release keys come from WEIGHTGATE_RELEASE_SIGNING_KEY_PEM: rotate by prepending "
            "a new PEM block there (the first signs) and keeping the old ones after it"
        )
    directory = KeyDirectory(settings.effective_release_keys_dir, PREFIX)
    active_from = (now + timedelta(seconds=max(0, activate_in))).replace(microsecond=0)
    with directory.locked():
        directory.write(new_private_key(), active_from)
        keys = scan(directory.path)
    new = next(k for k in keys if k.not_before == active_from and k.signer is not None)
    return new, keys


def retire(settings: Settings, wanted: str) -> ReleaseKey:
    """Replace a key's private file by its public half (after a compromise, or to keep no
    private key that no longer signs). Its signatures keep verifying."""
    directory = settings.effective_release_keys_dir
    key = next((k for k in scan(directory) if k.key_id.startswith(wanted)), None)
    if key is None or key.signer is None:
        raise KeyConfigError(f"no private release key {wanted!r} in {directory}")
    if key.not_after is None:
        raise KeyConfigError(
            f"release key {key.key_id[:16]} still signs: rotate first, then retire it"
        )
    public_file = directory / key.source.replace(".pem", ".pub")
    tmp = directory / f".{public_file.name}.{os.getpid()}.tmp"
    tmp.write_bytes(public_pem(key.public))
    os.replace(tmp, public_file)
    (directory / key.source).unlink()
    return key


def get_release_keys(request: Request) -> ReleaseKeySet:
    return parts_of(request.app).release_keys


ReleaseKeysDep = Annotated[ReleaseKeySet, Depends(get_release_keys)]
