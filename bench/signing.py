"""What signing a release costs at publish: weightgate's signing from the SHA-256 computed at
upload, side by side with upstream model-signing signing the same files from disk.

Usage: ``python bench/signing.py [--size-mib 2048] [--shards 8]``. Writes shards of random
bytes (page-cached, so the upstream side is measured at its best: hashing, no disk wait),
then times, best of ``--repeat``:

- weightgate: the in-toto statement, the DSSE signature and the bundle for every component
  from the (path, sha256) list the catalogue already holds (:mod:`app.signing.service`);
- upstream ``model_signing`` ``sign key`` on the directory: it must read and hash every byte;
- upstream ``verify key`` of our bundle on the same directory (what a researcher pays once).

The result goes into bench/RESULTS.md (section ``signing``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model_signing
from cryptography.hazmat.primitives.asymmetric import ec

from app.signing.keys import ReleaseKey, ReleaseKeySet, SoftwareSigner, key_id
from app.signing.service import component_bundle
from app.tokens.keys import private_pem
from bench.results import machine, write_section

MIB = 1024 * 1024
GIB = 1024 * MIB


def write_shards(root: Path, total: int, shards: int) -> list[tuple[str, str]]:
    """Random shards under ``root``; (path, sha256) as upload would have recorded them."""
    files = []
    per = total // shards
    for i in range(shards):
        path = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        h = hashlib.sha256()
        with (root / path).open("wb") as fh:
            left = per
            while left:
                chunk = os.urandom(min(left, 16 * MIB))
                h.update(chunk)
                fh.write(chunk)
                left -= len(chunk)
        files.append((path, h.hexdigest()))
    return files


def best(repeat: int, fn: Any) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    total = args.size_mib * MIB

    private = ec.generate_private_key(ec.SECP256R1())
    keys = ReleaseKeySet(
        static=[
            ReleaseKey(
                key_id=key_id(private.public_key()),
                public=private.public_key(),
                signer=SoftwareSigner(private),
                source="bench",
            )
        ]
    )
    model = SimpleNamespace(repo_id="acme/bench")
    release = SimpleNamespace(version="v1", revision="0" * 40)
    with tempfile.TemporaryDirectory(prefix="wg-bench-signing-") as tmp:
        root = Path(tmp) / "model"
        root.mkdir()
        files = write_shards(root, total, args.shards)
        rows = [SimpleNamespace(path=p, sha256=d) for p, d in files]
        key_file = Path(tmp) / "key.pem"
        key_file.write_bytes(private_pem(private))
        pub_file = Path(tmp) / "key.pub"
        pub_file.write_bytes(keys.listed()[0].published()["public_key"].encode())
        signature = Path(tmp) / "upstream.sig"
        ours = Path(tmp) / "ours.sig"

        def sign_ours() -> None:
            data, _ = component_bundle(
                model,  # type: ignore[arg-type]
                release,  # type: ignore[arg-type]
                "weights",
                rows,  # type: ignore[arg-type]
                keys=keys,
                now=datetime.now(UTC),
            )
            ours.write_bytes(data)

        def sign_upstream() -> None:
            hashing = model_signing.hashing.Config()  # type: ignore[no-untyped-call]
            config = model_signing.signing.Config()  # type: ignore[no-untyped-call]
            config.use_elliptic_key_signer(private_key=key_file).set_hashing_config(
                hashing.set_ignored_paths(paths=["signatures"])
            ).sign(root, signature)

        def verify_upstream() -> None:
            config = model_signing.verifying.Config()  # type: ignore[no-untyped-call]
            config.use_elliptic_key_verifier(public_key=pub_file).verify(root, ours)

        # Warm the page cache so upstream hashing is measured without disk reads.
        for path, _ in files:
            with (root / path).open("rb") as fh:
                while fh.read(16 * MIB):
                    pass
        t_ours = best(max(args.repeat, 20), sign_ours)
        t_upstream = best(args.repeat, sign_upstream)
        t_verify = best(args.repeat, verify_upstream)

    gib = total / GIB
    lines = [
        "## Signing a release at publish (`bench/signing.py`)",
        "",
        machine(),
        "",
        f"{args.shards} shards, {gib:.2f} GiB in all, page-cached; one ECDSA P-256 key; best of "
        f"{args.repeat} (ours: of 20).",
        "",
        "| what | seconds | seconds per GiB | times weightgate |",
        "|---|---|---|---|",
        f"| weightgate: statement + DSSE signature + bundle from the upload SHA-256s "
        f"| {t_ours:.4f} | {t_ours / gib:.4f} | 1 |",
        f"| upstream model-signing `sign key`, hashing the files "
        f"| {t_upstream:.2f} | {t_upstream / gib:.2f} | {t_upstream / t_ours:,.0f} |",
        f"| upstream `verify key` of our bundle (a researcher, once per download) "
        f"| {t_verify:.2f} | {t_verify / gib:.2f} | — |",
        "",
        "Signing at publish reads no object: the per-file SHA-256 of model-signing's `files` "
        "serialization is exactly the digest upload computed, so its cost does not grow with "
        "the release's size (only with its number of files).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section("signing", text)


if __name__ == "__main__":
    main()
