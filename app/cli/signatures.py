"""Checking a directory against the release signatures in its ``signatures/`` folder, offline,
with the keys the user pinned (:mod:`app.cli.trust`).

The bundles are the OpenSSF model-signing format (Sigstore bundle, DSSE envelope, in-toto
statement, one ``sha256`` resource per file); this reads them the way upstream
``model_signing`` does (same PAE, same key hint, same subject digest) and goes further: it
says which pinned key signed each component, which release a signature belongs to, and
which files no signature covers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.cli.localfiles import RECORD_DIR
from app.cli.trust import PinnedKey, TrustStore, load_public

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
SIGNATURES_DIR = "signatures"
# What the signatures themselves say to skip (their serialization.ignore_paths), plus our
# own record; a signature naming anything else is refused rather than trusted to skip it.
NOT_RELEASE_FILES = (SIGNATURES_DIR, RECORD_DIR, ".cache/huggingface")


class BadSignature(Exception):
    """The signature file cannot be trusted at all (unreadable, forged, unknown key)."""


@dataclass
class SignatureResult:
    path: str
    component: str | None = None
    release: str | None = None  # "model@version" as signed
    revision: str | None = None
    key: PinnedKey | None = None
    key_id: str | None = None
    verified: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    revoked: str | None = None

    @property
    def good(self) -> bool:
        return not self.problems and self.revoked is None


@dataclass
class SignaturesReport:
    results: list[SignatureResult] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return bool(self.results) and all(r.good for r in self.results) and not self.uncovered


def pae(payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def key_hint(material: dict[str, Any]) -> str:
    """The signing key's id: the bundle's hint, or for a certified key (model-signing's
    ``certificate`` method) the id of the leaf certificate's public key."""
    if "x509CertificateChain" not in material:
        return str(material["publicKey"]["hint"])
    der = base64.b64decode(material["x509CertificateChain"]["certificates"][0]["rawBytes"])
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return hashlib.sha256(spki).hexdigest()


def open_bundle(data: bytes, trust: TrustStore) -> tuple[dict[str, Any], str, PinnedKey]:
    """Verify a bundle's signature with a pinned key; the statement, key id and key."""
    try:
        doc = json.loads(data)
        if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise BadSignature(f"not a model-signing bundle (media type {doc.get('mediaType')!r})")
        hint = key_hint(doc["verificationMaterial"])
        envelope = doc["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        payload_type = envelope["payloadType"]
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as e:
        raise BadSignature(f"not a readable signature bundle ({e.__class__.__name__})") from e
    if payload_type != PAYLOAD_TYPE:
        raise BadSignature(f"unexpected payload type {payload_type!r}")
    key = trust.by_id(str(hint))
    if key is None:
        raise BadSignature(
            f"signed by key {str(hint)[:16]}…, which you have not pinned "
            "(weightgate trust add <server or key file>)"
        )
    try:
        load_public(key.public_key).verify(signature, pae(payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise BadSignature(
            f"the signature does not verify with pinned key {key.key_id[:16]}… "
            "(the signature file was altered, or it was made by another key)"
        ) from e
    try:
        statement = json.loads(payload)
    except ValueError as e:
        raise BadSignature("the signed statement is not JSON") from e
    return statement, str(hint), key


def resources(statement: dict[str, Any]) -> dict[str, str]:
    """The statement's ``{path: sha256}``, after the checks upstream makes."""
    try:
        if statement["predicateType"] != PREDICATE_TYPE:
            raise BadSignature(f"unexpected predicate type {statement['predicateType']!r}")
        predicate = statement["predicate"]
        serialization = predicate["serialization"]
        if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
            raise BadSignature("only per-file SHA-256 signatures are supported")
        extra = set(serialization.get("ignore_paths", [])) - set(NOT_RELEASE_FILES)
        if extra:
            raise BadSignature(f"the signature skips paths it has no reason to: {sorted(extra)}")
        root = hashlib.sha256()
        out = {}
        for res in predicate["resources"]:
            if res["algorithm"] != "sha256":
                raise BadSignature(f"unsupported digest {res['algorithm']!r}")
            root.update(bytes.fromhex(res["digest"]))
            out[str(res["name"])] = str(res["digest"])
        if statement["subject"][0]["digest"]["sha256"] != root.hexdigest():
            raise BadSignature("the statement's subject digest does not match its files")
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise BadSignature(f"the signed statement is malformed ({e.__class__.__name__})") from e
    return out


def local_files(root: Path) -> list[str]:
    """Every regular file under ``root`` that is part of a download (POSIX paths)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not any(rel == p or rel.startswith(p + "/") for p in NOT_RELEASE_FILES):
                found.append(rel)
        dirnames.sort()
    return sorted(found)


def check_signatures(
    root: Path,
    *,
    trust: TrustStore,
    digest: Callable[[str], str | None],
    expected_release: tuple[str, str, str] | None = None,
) -> SignaturesReport:
    """Check each ``signatures/*.sig`` under ``root``. ``digest(path)`` is the SHA-256 of a
    local file (None when missing); ``expected_release`` (model, version, revision) is what
    the directory holds according to its download record."""
    report = SignaturesReport()
    folder = root / SIGNATURES_DIR
    sig_files = sorted(folder.glob("*.sig")) if folder.is_dir() else []
    covered: set[str] = set()
    for sig_file in sig_files:
        result = SignatureResult(path=f"{SIGNATURES_DIR}/{sig_file.name}")
        report.results.append(result)
        try:
            statement, result.key_id, result.key = open_bundle(sig_file.read_bytes(), trust)
            signed = resources(statement)
        except BadSignature as e:
            result.problems.append(str(e))
            continue
        facts = statement.get("predicate", {}).get("weightgate", {})
        result.component = facts.get("component")
        result.release = f"{facts.get('model')}@{facts.get('version')}"
        result.revision = facts.get("revision")
        if result.component != sig_file.stem:
            result.problems.append(
                f"this is the signature of component {result.component!r}, not {sig_file.stem!r}"
            )
        if expected_release is not None:
            model, version, revision = expected_release
            if (facts.get("model"), facts.get("version"), facts.get("revision")) != (
                model,
                version,
                revision,
            ):
                result.problems.append(
                    f"this is a signature of {result.release} (revision {result.revision}), "
                    f"not of the release in this directory, {model}@{version} ({revision})"
                )
                continue
        # Covered from here on: a file that fails below is reported with this signature.
        covered.update(signed)
        revoked = trust.revocation(str(facts.get("model")), str(facts.get("version")))
        if revoked is not None:
            result.revoked = f"revoked at {revoked.get('revoked_at')}: {revoked.get('reason')}"
        for path, want in sorted(signed.items()):
            got = digest(path)
            if got is None:
                result.problems.append(f"{path}: missing (signed, but not in this directory)")
            elif got != want:
                result.problems.append(f"{path}: does not match what was signed")
            else:
                result.verified.append(path)
    report.uncovered = [p for p in local_files(root) if p not in covered]
    return report
