"""A release key inside a PKCS #11 token (SoftHSM2): publishing signs through the token, the
upstream tool verifies the download with the public key read from it, rotation to another
key in the token keeps earlier releases verifiable, and a misconfigured token stops the
server at startup, never at publish."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from model_signing import verifying
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.clock import FixedClock
from app.keyfiles import KeyConfigError
from app.main import create_app
from app.settings import Settings
from app.storage import ObjectStore
from tests.factories.catalogue import check, publish_release
from tests.signing.helpers import (
    materialise,
    release_keys,
    serve,
    upstream_verify,
    upstream_verify_certificate,
    write_public_key,
)
from tests.signing.pki import Ca, write_chain
from tests.signing.softhsm import PIN, TOKEN, UNOPENED, SoftHsm

MANIFEST = "/v1/models/acme/atlas-7b/releases/{v}/manifest"


def token_settings(settings: Settings, softhsm: SoftHsm, label: str, **extra: object) -> Settings:
    return settings.model_copy(
        update={
            "release_pkcs11_module": softhsm.module,
            "release_pkcs11_token_label": TOKEN,
            "release_pkcs11_key_label": label,
            "release_pkcs11_pin": None,
            "release_pkcs11_pin_file": settings.data_dir.parent / "pin",
            **extra,
        }
    )


@pytest.fixture
def pin_file(settings: Settings) -> Path:
    path = settings.data_dir.parent / "pin"
    path.write_text(PIN + "\n")  # as `echo $PIN > file` writes it
    return path


def test_a_release_signed_in_the_token_verifies_with_upstream(
    softhsm: SoftHsm,
    settings: Settings,
    pin_file: Path,
    clock: FixedClock,
    store: ObjectStore,
    engine: Engine,
    session_factory: sessionmaker[Session],
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    softhsm.generate("release-a")
    configured = token_settings(settings, softhsm, "release-a")
    with serve(
        configured, clock=clock, store=store, engine=engine, session_factory=session_factory
    ) as client:
        publish_release(client, admin_headers, files={"w.safetensors": ("weights", b"w" * 4096)})
        manifest = check(client.get(MANIFEST.format(v="v1"), headers=admin_headers), 200)
        doc = release_keys(client)
        # The token drops the server's session: the next publish signs on a new one.
        softhsm.close_all_sessions()
        publish_release(
            client, admin_headers, version="v2", create=False, files={"w.bin": ("weights", b"2")}
        )
        again = check(client.get(MANIFEST.format(v="v2"), headers=admin_headers), 200)
        assert again["signatures"][0]["key_id"] == manifest["signatures"][0]["key_id"]
    (key,) = doc["keys"]
    assert manifest["signatures"][0]["key_id"] == key["key_id"]
    assert key["not_before"] is not None
    assert key["certificate_chain"] is None
    # The public key we publish is the token's, as upstream's own PKCS #11 code reads it.
    # The private key never left the token: none on disk, and the token will not say it.
    keys_dir = configured.effective_release_keys_dir
    assert sorted(p.suffix for p in keys_dir.iterdir() if not p.name.startswith(".")) == [".pub"]
    assert softhsm.private_value("release-a") is None

    root = materialise(store, manifest, tmp_path / "atlas")
    pub = write_public_key(doc, key["key_id"], tmp_path / "release.pub")
    done = upstream_verify(root, root / "signatures/weights.sig", pub)
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout
    # Upstream's own PKCS #11 signer (its pkcs11 extra, PyKCS11 too), with the same key in
    # the token, makes a bundle that names our published key and verifies with it.
    theirs = tmp_path / "upstream.sig"
    signed = subprocess.run(
        [sys.executable, "-m", "model_signing", "sign", "pkcs11-key", "--pkcs11_uri",
         softhsm.uri("release-a"), "--signature", str(theirs),
         "--ignore-paths", str(root / "signatures"), str(root)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert (
        json.loads(theirs.read_text())["verificationMaterial"]["publicKey"]["hint"]
        == (key["key_id"])
    )
    config = verifying.Config()  # type: ignore[no-untyped-call]
    config.use_elliptic_key_verifier(public_key=pub).verify(root, theirs)


def test_rotating_to_a_new_token_key_keeps_earlier_releases_verifiable(
    softhsm: SoftHsm,
    settings: Settings,
    pin_file: Path,
    clock: FixedClock,
    store: ObjectStore,
    engine: Engine,
    session_factory: sessionmaker[Session],
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    """Rotation is configuring another key label; this one also carries the lab's
    certificate (the token holds the key, the chain is a file)."""
    softhsm.generate("release-2026")
    public = softhsm.generate("release-2027")
    first = token_settings(settings, softhsm, "release-2026")
    with serve(
        first, clock=clock, store=store, engine=engine, session_factory=session_factory
    ) as c:
        publish_release(c, admin_headers, files={"w.bin": ("weights", b"one")})
    clock.advance(days=30)
    ca = Ca.make("Acme Lab Root CA", clock.now())
    leaf = ca.issue(public, not_before=clock.now(), not_after=clock.now() + timedelta(days=365))
    chain = write_chain(tmp_path / "chain.pem", leaf)
    second = token_settings(settings, softhsm, "release-2027", release_certificate_chain=chain)
    with serve(
        second, clock=clock, store=store, engine=engine, session_factory=session_factory
    ) as c:
        publish_release(
            c, admin_headers, version="v2", create=False, files={"w.bin": ("weights", b"two")}
        )
        manifests = {
            v: check(c.get(MANIFEST.format(v=v), headers=admin_headers), 200) for v in ("v1", "v2")
        }
        doc = release_keys(c)
    old, new = doc["keys"]
    assert old["not_after"] == new["not_before"] is not None
    assert new["not_after"] is None
    assert manifests["v1"]["signatures"][0]["key_id"] == old["key_id"]
    assert manifests["v2"]["signatures"][0]["key_id"] == new["key_id"]
    assert old["certificate_chain"] is None
    assert new["certificate_chain"] == [leaf.public_bytes(serialization.Encoding.PEM).decode()]

    v1 = materialise(store, manifests["v1"], tmp_path / "v1")
    pub = write_public_key(doc, old["key_id"], tmp_path / "old.pub")
    config = verifying.Config()  # type: ignore[no-untyped-call]
    config.use_elliptic_key_verifier(public_key=pub).verify(v1, v1 / "signatures/weights.sig")
    v2 = materialise(store, manifests["v2"], tmp_path / "v2")
    done = upstream_verify_certificate(
        v2, v2 / "signatures/weights.sig", ca.write(tmp_path / "ca.pem")
    )
    assert done.returncode == 0, done.stderr

    # Going back to the key the token rotated away from would sign inside its successor's
    # published period: refused, at startup.
    with pytest.raises(KeyConfigError, match=r"stopped signing at .* when key"):
        create_app(first, clock=clock, store=store, engine=engine, run_background=False)


def test_a_misconfigured_token_stops_the_server_at_startup(
    softhsm: SoftHsm,
    settings: Settings,
    pin_file: Path,
    clock: FixedClock,
    store: ObjectStore,
    engine: Engine,
) -> None:
    softhsm.generate("release-present", token=UNOPENED)
    cases: dict[str, dict[str, object]] = {
        "cannot load the PKCS #11 module /usr/lib/softhsm/missing.so": {
            "release_pkcs11_module": Path("/usr/lib/softhsm/missing.so")
        },
        "refused the PIN (WEIGHTGATE_RELEASE_PKCS11_PIN or _PIN_FILE) for the key label "
        f"'release-present' on token '{UNOPENED}': CKR_PIN_INCORRECT": {
            "release_pkcs11_token_label": UNOPENED,
            "release_pkcs11_key_label": "release-present",
            "release_pkcs11_pin_file": None,
            "release_pkcs11_pin": SecretStr("0000-0000"),
        },
        f"no private key with label 'release-absent' on token '{TOKEN}'": {
            "release_pkcs11_key_label": "release-absent"
        },
        f"no token labelled 'nope' in {softhsm.module} (tokens there: '{TOKEN}', '{UNOPENED}')": {
            "release_pkcs11_token_label": "nope"
        },
        "needs its user PIN": {"release_pkcs11_pin_file": None},
    }
    for message, update in cases.items():
        bad = token_settings(settings, softhsm, "release-a", **update)
        with pytest.raises(KeyConfigError) as raised:
            create_app(bad, clock=clock, store=store, engine=engine, run_background=False)
        assert message in str(raised.value)
        assert "0000-0000" not in str(raised.value)
        assert PIN not in str(raised.value)
