"""A release key the operator configured rather than one weightgate generated: a PEM private
key file (``WEIGHTGATE_RELEASE_SIGNING_KEY_FILE``) or a key inside an HSM or token through
PKCS #11 (``WEIGHTGATE_RELEASE_PKCS11_*``), optionally certified by the lab's CA
(``WEIGHTGATE_RELEASE_CERTIFICATE_CHAIN``).

Rotation is configuring another key and restarting. So that every release keeps verifying,
the key directory keeps a record of each configured key from the moment it first signs:
``release-p256-<first use>.pub`` (its public key) and ``.crt`` (its chain). The periods
published at ``/.well-known/release-keys.json`` come from those records, exactly as for
generated keys; an earlier key, generated or configured, stays published with the period it
signed in.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from app.keyfiles import KeyConfigError, KeyDirectory, key_file_name, parse_private_pem
from app.settings import Settings
from app.signing.certificates import load_chain
from app.signing.keys import (
    PREFIX,
    ReleaseKey,
    Signer,
    SoftwareSigner,
    chain_file,
    key_id,
    public_pem,
    scan,
    utc_text,
)
from app.signing.pkcs11 import TokenSigner, token_config


def configured_key(settings: Settings, *, now: datetime) -> ReleaseKey | None:
    """The configured release key, checked (None when weightgate manages its keys)."""
    key_file, module = settings.release_signing_key_file, settings.release_pkcs11_module
    if key_file is None and module is None:
        return None
    if key_file is not None and module is not None:
        raise KeyConfigError(
            "set WEIGHTGATE_RELEASE_SIGNING_KEY_FILE or WEIGHTGATE_RELEASE_PKCS11_MODULE, "
            "not both: one key signs"
        )
    if settings.release_signing_key_pem:
        raise KeyConfigError(
            "WEIGHTGATE_RELEASE_SIGNING_KEY_PEM and a configured release key are both set: "
            "keep one (earlier keys stay published from the release keys directory)"
        )
    signer: Signer
    if module is not None:
        pin = settings.release_pkcs11_pin
        token = TokenSigner(
            token_config(
                module=module,
                token_label=settings.release_pkcs11_token_label,
                slot=settings.release_pkcs11_slot,
                key_label=settings.release_pkcs11_key_label,
                key_id=settings.release_pkcs11_key_id,
                pin=pin.get_secret_value() if pin is not None else None,
                pin_file=settings.release_pkcs11_pin_file,
            )
        )
        signer, public, source = token, token.public, "pkcs11"
    else:
        assert key_file is not None
        try:
            data = key_file.read_bytes()
        except OSError as e:
            raise KeyConfigError(
                f"WEIGHTGATE_RELEASE_SIGNING_KEY_FILE: cannot read {key_file} "
                f"({e.__class__.__name__})"
            ) from e
        private = parse_private_pem(
            data, source=f"WEIGHTGATE_RELEASE_SIGNING_KEY_FILE ({key_file})"
        )
        signer, public, source = SoftwareSigner(private), private.public_key(), "file"
    chain: tuple[x509.Certificate, ...] = ()
    if settings.release_certificate_chain is not None:
        chain = load_chain(settings.release_certificate_chain, public=public, now=now)
    return ReleaseKey(
        key_id=key_id(public), public=public, signer=signer, source=source, certificates=chain
    )


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def record(directory: KeyDirectory, key: ReleaseKey, *, now: datetime) -> None:
    """Record ``key`` in the directory the first time it is configured. Configuring a key
    that an other key has since replaced is refused: it would sign inside its successor's
    period, which the published periods say it does not."""
    with directory.locked():
        keys = scan(directory.path)
        index = next((i for i, k in enumerate(keys) if k.key_id == key.key_id), None)
        if index is None:
            stamp = now.replace(microsecond=0)
            if keys and keys[-1].not_before is not None and keys[-1].not_before >= stamp:
                stamp = keys[-1].not_before + timedelta(seconds=1)  # keep the order
            name = key_file_name(stamp, PREFIX).replace(".pem", ".pub")
            if key.certificates:
                _write(chain_file(directory.path, name), _chain_bytes(key))
            _write(directory.path / name, public_pem(key.public))
            return
        if index != len(keys) - 1:
            successor = keys[index + 1]
            raise KeyConfigError(
                f"the configured release key {key.key_id[:16]} stopped signing at "
                f"{utc_text(keys[index].not_after)}, when key {successor.key_id[:16]} "
                f"({successor.source}) took over; configure a new key to rotate (earlier keys "
                "stay published)"
            )
        if key.certificates:
            # The same key with a renewed certificate: publish the one it now signs with.
            target = chain_file(directory.path, keys[index].source)
            data = _chain_bytes(key)
            if not target.exists() or target.read_bytes() != data:
                _write(target, data)


def _chain_bytes(key: ReleaseKey) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in key.certificates)
