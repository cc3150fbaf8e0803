"""Which release keys the settings describe, at startup: a configured key (a key file or a
PKCS #11 token, :mod:`app.signing.configured`), static PEM keys, or the key directory, whose
first key is generated outside production (:mod:`app.signing.keys`)."""

from __future__ import annotations

from datetime import datetime

from app.keyfiles import KeyConfigError, KeyDirectory, new_private_key
from app.settings import Settings
from app.signing.configured import configured_key, record
from app.signing.keys import PREFIX, ReleaseKeySet, keys_from_env, scan


def load_release_keys(
    settings: Settings, *, now: datetime, generate: bool | None = None, record_key: bool = True
) -> ReleaseKeySet:
    """The release keys the settings describe; a first key is generated outside production.
    A configured key is recorded in the directory (``record_key``) by the server that will
    sign with it, not by a command that only looks."""
    configured = configured_key(settings, now=now)
    if configured is not None:
        path = settings.effective_release_keys_dir
        if record_key:
            record(KeyDirectory(path, PREFIX), configured, now=now)
        return ReleaseKeySet(directory=path, configured=configured)
    if settings.release_certificate_chain is not None:
        raise KeyConfigError(
            "WEIGHTGATE_RELEASE_CERTIFICATE_CHAIN certifies a configured key: set "
            "WEIGHTGATE_RELEASE_SIGNING_KEY_FILE or a PKCS #11 key (WEIGHTGATE_RELEASE_PKCS11_*)"
        )
    if settings.release_signing_key_pem:
        return ReleaseKeySet(static=keys_from_env(settings.release_signing_key_pem))
    path = settings.effective_release_keys_dir
    if generate is None:
        generate = settings.environment != "production"
    if not generate:
        if not scan(path):
            raise KeyConfigError(
                f"no release-signing key in {path}: run `weightgate release-keys rotate` or "
                "set WEIGHTGATE_RELEASE_SIGNING_KEY_PEM"
            )
        return ReleaseKeySet(directory=path)
    directory = KeyDirectory(path, PREFIX)
    with directory.locked():
        if not directory.scan():
            directory.write(new_private_key(), now)
    return ReleaseKeySet(directory=path)
