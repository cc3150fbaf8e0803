"""The certificate chain of a configured release key (issued by the lab's CA).

With a chain, each bundle carries it in ``verificationMaterial.x509CertificateChain`` (leaf
first, as upstream model-signing's ``certificate`` method writes it), and verifiers check the
signature against the leaf's key and the leaf against the lab's CA:
``python -m model_signing verify certificate --certificate_chain lab-ca.pem``.

Upstream checks the chain as of the leaf's ``not_valid_before``, so a bundle signed after
the leaf expired would still verify there. We therefore refuse an expired (or not yet
valid) certificate at startup, and refuse to sign with one that expired since.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from app.keyfiles import KeyConfigError

SETTING = "WEIGHTGATE_RELEASE_CERTIFICATE_CHAIN"


def parse_chain(data: bytes, *, source: str) -> tuple[x509.Certificate, ...]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise KeyConfigError(f"{source}: not PEM certificates") from e
    return tuple(certs)


def subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def check_valid(
    cert: x509.Certificate,
    now: datetime,
    *,
    source: str,
    what: str = "the release-signing certificate",
) -> None:
    if now >= cert.not_valid_after_utc:
        raise KeyConfigError(
            f"{source}: {what} {subject(cert)!r} expired on "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC; configure a renewed one"
        )
    if now < cert.not_valid_before_utc:
        raise KeyConfigError(
            f"{source}: {what} {subject(cert)!r} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
        )


def can_sign(leaf: x509.Certificate) -> bool:
    """What upstream's verifier requires: key usage digitalSignature, or EKU codeSigning."""
    try:
        if leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CODE_SIGNING in eku


def load_chain(
    path: Path, *, public: ec.EllipticCurvePublicKey, now: datetime
) -> tuple[x509.Certificate, ...]:
    """The configured chain, checked: it certifies ``public``, is valid now, may sign, and
    each certificate is issued by the next."""
    source = f"{SETTING} ({path})"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyConfigError(f"{source}: cannot read it ({e.__class__.__name__})") from e
    chain = parse_chain(data, source=source)
    if not chain:
        raise KeyConfigError(f"{source}: holds no PEM certificate")
    leaf = chain[0]
    if leaf.public_key() != public:
        raise KeyConfigError(
            f"{source}: the first certificate ({subject(leaf)!r}) is not for the configured "
            "release key: put the key's own certificate first, then its intermediates"
        )
    check_valid(leaf, now, source=source)
    if not can_sign(leaf):
        raise KeyConfigError(
            f"{source}: the certificate {subject(leaf)!r} does not allow signing (it needs key "
            "usage digitalSignature or extended key usage codeSigning)"
        )
    for cert, issuer in itertools.pairwise(chain):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise KeyConfigError(
                f"{source}: {subject(cert)!r} is not issued by the next certificate, "
                f"{subject(issuer)!r}: list the chain from the key's certificate up"
            ) from e
        check_valid(issuer, now, source=source, what="the CA certificate")
    return chain


def chain_pem(chain: Sequence[x509.Certificate]) -> list[str]:
    return [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain]


def chain_der_b64(chain: Sequence[x509.Certificate]) -> list[str]:
    """The bundle's ``rawBytes``: base64 of each certificate's DER."""
    return [
        base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii") for c in chain
    ]
