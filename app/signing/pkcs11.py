"""A release key held in an HSM or token, used through PKCS #11: the private key never leaves
the token; we hash on our side and the token signs the digest (``CKM_ECDSA``, which every
token with EC keys has, as upstream model-signing's own PKCS #11 signer does).

The public key is read from the token (its public key object, or else a certificate object
with the same label or id) and published like any release key. Everything that can be wrong
with the configuration (module, token, PIN, key) is found when the server starts, as a
:class:`~app.keyfiles.KeyConfigError` naming the setting; the PIN never appears in a
message. A token that fails later (an HSM restarted, a network HSM unreachable) is retried
once on a new session, then reported as :class:`SigningUnavailable`: nothing is published.

This is the only module that imports PyKCS11.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import PyKCS11  # type: ignore[import-untyped]  # the package ships no type information
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from app.keyfiles import KeyConfigError

# DER of the OID prime256v1: the CKA_EC_PARAMS of a P-256 key.
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
_UNCOMPRESSED_POINT = 65  # 0x04 || X || Y for P-256


class SigningUnavailable(Exception):
    """The token could not sign (after one retry on a fresh session)."""


@dataclass(frozen=True)
class TokenConfig:
    module: Path
    token_label: str | None
    slot: int | None
    key_label: str | None
    key_id: bytes | None
    pin: str = field(repr=False)

    def describe(self) -> str:
        """Where the key is, for messages (never the PIN)."""
        where = f"token {self.token_label!r}" if self.token_label else f"slot {self.slot}"
        what = []
        if self.key_label:
            what.append(f"label {self.key_label!r}")
        if self.key_id is not None:
            what.append(f"id {self.key_id.hex()}")
        return f"key {' and '.join(what)} on {where}"


def _error_name(e: Exception) -> str:
    """``CKR_PIN_INCORRECT`` and the like: what the token said, without anything we sent."""
    if isinstance(e, PyKCS11.PyKCS11Error) and isinstance(e.value, int) and e.value >= 0:
        return str(PyKCS11.CKR.get(e.value, f"CKR 0x{e.value:08X}"))
    return e.__class__.__name__


def decode_point(raw: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point; a few tokens return it bare."""
    if len(raw) == _UNCOMPRESSED_POINT + 2 and raw[0] == 0x04 and raw[1] == _UNCOMPRESSED_POINT:
        return raw[2:]
    return raw


class TokenSigner:
    """Signs with a private key inside a PKCS #11 token. One logged-in session, used under a
    lock (a PKCS #11 session runs one operation at a time); publishes are rare and short."""

    def __init__(self, config: TokenConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._lib = PyKCS11.PyKCS11Lib()
        try:
            self._lib.load(str(config.module))
        except PyKCS11.PyKCS11Error as e:
            raise KeyConfigError(
                f"WEIGHTGATE_RELEASE_PKCS11_MODULE: cannot load the PKCS #11 module "
                f"{config.module} (missing, or not a PKCS #11 library)"
            ) from e
        self._slot = self._find_slot()
        self._session, self._private = self._open()
        self.public = self._read_public()

    def _find_slot(self) -> int:
        c = self._config
        try:
            slots = self._lib.getSlotList(tokenPresent=True)
            if c.slot is not None and c.token_label is None:
                if c.slot in slots:
                    return int(c.slot)
                raise KeyConfigError(
                    f"WEIGHTGATE_RELEASE_PKCS11_SLOT: no token in slot {c.slot} of {c.module}"
                )
            labels = {s: self._lib.getTokenInfo(s).label.strip() for s in slots}
        except PyKCS11.PyKCS11Error as e:
            raise KeyConfigError(
                f"the PKCS #11 module {c.module} failed listing its tokens ({_error_name(e)})"
            ) from e
        found = [s for s, label in labels.items() if label == c.token_label]
        if c.slot is not None:
            found = [s for s in found if s == c.slot]
        if not found:
            known = ", ".join(repr(label) for label in sorted(labels.values()) if label) or "none"
            raise KeyConfigError(
                f"WEIGHTGATE_RELEASE_PKCS11_TOKEN_LABEL: no token labelled {c.token_label!r} "
                f"in {c.module} (tokens there: {known})"
            )
        return int(found[0])

    def _open(self) -> tuple[Any, Any]:
        c = self._config
        try:
            session = self._lib.openSession(self._slot, PyKCS11.CKF_SERIAL_SESSION)
        except PyKCS11.PyKCS11Error as e:
            raise KeyConfigError(
                f"cannot open a session on the PKCS #11 {c.describe()} ({_error_name(e)})"
            ) from e
        try:
            session.login(c.pin)
        except PyKCS11.PyKCS11Error as e:
            # Login is per application, not per session: another session of this process
            # (a second app in one process, as in tests) may have logged in already.
            if e.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                session.closeSession()
                raise KeyConfigError(
                    f"the PKCS #11 token refused the PIN (WEIGHTGATE_RELEASE_PKCS11_PIN or "
                    f"_PIN_FILE) for the {c.describe()}: {_error_name(e)}"
                ) from e
        private = self._find(session, PyKCS11.CKO_PRIVATE_KEY)
        if private is None:
            session.closeSession()
            raise KeyConfigError(
                f"no private key with {c.describe().removeprefix('key ')} "
                "(WEIGHTGATE_RELEASE_PKCS11_KEY_LABEL / _KEY_ID)"
            )
        key_type, params = session.getAttributeValue(
            private, [PyKCS11.CKA_KEY_TYPE, PyKCS11.CKA_EC_PARAMS]
        )
        if key_type != PyKCS11.CKK_EC or bytes(params or b"") != P256_PARAMS:
            session.closeSession()
            raise KeyConfigError(
                f"the PKCS #11 {c.describe()} is not an EC P-256 key: release keys are ECDSA P-256"
            )
        return session, private

    def _find(self, session: Any, cls: int) -> Any:
        c = self._config
        template: list[tuple[int, Any]] = [(PyKCS11.CKA_CLASS, cls)]
        if c.key_label:
            template.append((PyKCS11.CKA_LABEL, c.key_label))
        if c.key_id is not None:
            template.append((PyKCS11.CKA_ID, tuple(c.key_id)))
        found = session.findObjects(template)
        return found[0] if found else None

    def _read_public(self) -> ec.EllipticCurvePublicKey:
        public = self._find(self._session, PyKCS11.CKO_PUBLIC_KEY)
        if public is not None:
            (point,) = self._session.getAttributeValue(public, [PyKCS11.CKA_EC_POINT])
            try:
                return ec.EllipticCurvePublicKey.from_encoded_point(
                    ec.SECP256R1(), decode_point(bytes(point))
                )
            except ValueError as e:
                raise KeyConfigError(
                    f"the public key of the PKCS #11 {self._config.describe()} is not a P-256 point"
                ) from e
        # Some tokens keep only the private key and its certificate.
        cert = self._find(self._session, PyKCS11.CKO_CERTIFICATE)
        if cert is not None:
            from cryptography import x509

            (der,) = self._session.getAttributeValue(cert, [PyKCS11.CKA_VALUE])
            key = x509.load_der_x509_certificate(bytes(der)).public_key()
            if isinstance(key, ec.EllipticCurvePublicKey):
                return key
        raise KeyConfigError(
            f"the PKCS #11 {self._config.describe()} has no public key or certificate object "
            "to publish: store the public key on the token beside the private key"
        )

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 over SHA-256 of ``data``, DER-encoded (what verifiers expect)."""
        digest = hashlib.sha256(data).digest()
        with self._lock:
            try:
                raw = self._sign_digest(digest)
            except PyKCS11.PyKCS11Error:
                # The session may be gone (token reset, HSM restarted): one fresh try.
                try:
                    self._session, self._private = self._open()
                    raw = self._sign_digest(digest)
                except (PyKCS11.PyKCS11Error, KeyConfigError) as e:
                    raise SigningUnavailable(
                        f"the PKCS #11 token did not sign ({_error_name(e)})"
                    ) from e
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def _sign_digest(self, digest: bytes) -> bytes:
        mechanism = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA, None)
        return bytes(self._session.sign(self._private, digest, mechanism))


def token_config(
    *,
    module: Path,
    token_label: str | None,
    slot: int | None,
    key_label: str | None,
    key_id: str | None,
    pin: str | None,
    pin_file: Path | None,
) -> TokenConfig:
    """Check the settings before touching the module."""
    if token_label is None and slot is None:
        raise KeyConfigError(
            "WEIGHTGATE_RELEASE_PKCS11_MODULE is set: name the token with "
            "WEIGHTGATE_RELEASE_PKCS11_TOKEN_LABEL (or WEIGHTGATE_RELEASE_PKCS11_SLOT)"
        )
    if not key_label and not key_id:
        raise KeyConfigError(
            "WEIGHTGATE_RELEASE_PKCS11_MODULE is set: name the key with "
            "WEIGHTGATE_RELEASE_PKCS11_KEY_LABEL or WEIGHTGATE_RELEASE_PKCS11_KEY_ID"
        )
    raw_id = None
    if key_id:
        try:
            raw_id = bytes.fromhex(key_id)
        except ValueError as e:
            raise KeyConfigError(
                "WEIGHTGATE_RELEASE_PKCS11_KEY_ID is the key's CKA_ID in hex (e.g. 01 or a1b2)"
            ) from e
    if pin is not None and pin_file is not None:
        raise KeyConfigError(
            "set WEIGHTGATE_RELEASE_PKCS11_PIN or WEIGHTGATE_RELEASE_PKCS11_PIN_FILE, not both"
        )
    if pin_file is not None:
        try:
            pin = pin_file.read_text("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise KeyConfigError(
                f"WEIGHTGATE_RELEASE_PKCS11_PIN_FILE: cannot read {pin_file} "
                f"({e.__class__.__name__})"
            ) from e
    if not pin:
        raise KeyConfigError(
            "the PKCS #11 token needs its user PIN: WEIGHTGATE_RELEASE_PKCS11_PIN_FILE (a file "
            "holding it) or WEIGHTGATE_RELEASE_PKCS11_PIN"
        )
    return TokenConfig(
        module=module,
        token_label=token_label,
        slot=slot,
        key_label=key_label or None,
        key_id=raw_id,
        pin=pin,
    )
