"""The OpenSSF model-signing format, written from digests we already have.

A signature is a Sigstore bundle (media type v0.3) holding a DSSE envelope whose payload is
an in-toto Statement v1 with predicate ``https://model_signing/signature/v1.0``: one
resource per file (path, ``sha256``, hex digest of the whole file) and a subject digest that
is the SHA-256 of the resources' raw digests in order. For the ``files`` serialization with
SHA-256 a file's digest is exactly the SHA-256 that upload computed, so signing a release
reads no object (``bench/signing.py`` compares with model-signing re-hashing the files).

Upstream ``model_signing`` (``python -m model_signing verify key``) and inference servers
verify these bundles; ``tests/signing`` proves it on files downloaded by real clients.
The predicate's ``serialization.ignore_paths`` is honoured by those verifiers: it keeps the
signatures directory and the clients' bookkeeping directories out of the comparison.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"

SIGNATURES_DIR = "signatures"
# Not part of any release: our signatures, the weightgate CLI's download record, and the
# Hugging Face client's local-dir metadata. Uploads under these prefixes are refused, so an
# ignored path can never hide a file of the release.
IGNORED_PATHS = (SIGNATURES_DIR, ".weightgate", ".cache/huggingface")


def reserved_prefix(path: str) -> str | None:
    """The ignored prefix ``path`` falls under, if any."""
    for prefix in IGNORED_PATHS:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix
    return None


def signature_path(component: str) -> str:
    return f"{SIGNATURES_DIR}/{component}.sig"


def statement(
    *, subject: str, files: Iterable[tuple[str, str]], release: dict[str, Any]
) -> dict[str, Any]:
    """The in-toto statement over ``files`` (path, sha256 hex). ``release`` goes into the
    predicate under ``weightgate``: model-signing v1.0 verifiers ignore extra predicate
    fields, ``weightgate verify`` reads it to tell a signature of another release."""
    ordered = sorted(files)
    root = hashlib.sha256()
    resources = []
    for path, digest in ordered:
        root.update(bytes.fromhex(digest))
        resources.append({"algorithm": "sha256", "digest": digest, "name": path})
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject, "digest": {"sha256": root.hexdigest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "resources": resources,
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                # True: a Hugging Face cache snapshot is a tree of symlinks into its blobs.
                "allow_symlinks": True,
                "ignore_paths": list(IGNORED_PATHS),
            },
            "weightgate": release,
        },
    }


def pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is over."""
    return b"DSSEv1 %d %s %d %s" % (
        len(PAYLOAD_TYPE),
        PAYLOAD_TYPE.encode(),
        len(payload),
        payload,
    )


def bundle(
    payload: bytes, signature: bytes, *, key_hint: str, certificates: Sequence[str] = ()
) -> bytes:
    """The bundle file's bytes. ``key_hint`` is model-signing's public-key hint (the key id);
    ``certificates`` (base64 DER, leaf first) replace it for a certified key, as
    model-signing's ``certificate`` method writes them."""
    material: dict[str, Any] = (
        {"x509CertificateChain": {"certificates": [{"rawBytes": c} for c in certificates]}}
        if certificates
        else {"publicKey": {"hint": key_hint}}
    )
    doc = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {**material, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    return json.dumps(doc, indent=2).encode("utf-8") + b"\n"


def payload_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False).encode("utf-8")
