"""A release key certified by the lab's CA: bundles carry the chain, the upstream tool verifies
them against the CA (and not against another CA), ``weightgate verify`` against the pinned
key; an expired certificate stops the server at startup, and one that expires while the
server runs stops publishing, not signing with it."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.cli.signatures import check_signatures
from app.cli.trust import PinnedKey, TrustStore
from app.clock import FixedClock
from app.keyfiles import KeyConfigError
from app.main import create_app
from app.settings import Settings
from app.storage import ObjectStore
from tests.factories.catalogue import check, publish_release, sha256
from tests.signing.helpers import materialise, release_keys, serve, upstream_verify_certificate
from tests.signing.pki import Ca, write_chain, write_key

MANIFEST = "/v1/models/acme/atlas-7b/releases/v1/manifest"


def certified(
    settings: Settings, tmp_path: Path, key: ec.EllipticCurvePrivateKey, *chain: x509.Certificate
) -> Settings:
    return settings.model_copy(
        update={
            "release_signing_key_file": write_key(tmp_path / "release.key", key),
            "release_certificate_chain": write_chain(tmp_path / "release-chain.pem", *chain),
        }
    )


def test_certified_signatures_verify_against_the_lab_ca_only(
    settings: Settings,
    clock: FixedClock,
    store: ObjectStore,
    engine: Engine,
    session_factory: sessionmaker[Session],
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    lab, other = Ca.make("Acme Lab Root CA", clock.now()), Ca.make("Other Root CA", clock.now())
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = lab.issue(
        key.public_key(), not_before=clock.now(), not_after=clock.now() + timedelta(days=90)
    )
    configured = certified(settings, tmp_path, key, leaf, lab.cert)
    with serve(
        configured, clock=clock, store=store, engine=engine, session_factory=session_factory
    ) as client:
        publish_release(client, admin_headers, files={"w.safetensors": ("weights", b"w" * 2048)})
        manifest = check(client.get(MANIFEST, headers=admin_headers), 200)
        (published,) = release_keys(client)["keys"]
    pem = [c.public_bytes(serialization.Encoding.PEM).decode() for c in (leaf, lab.cert)]
    assert published["certificate_chain"] == pem
    root = materialise(store, manifest, tmp_path / "atlas")
    sig = root / "signatures/weights.sig"
    material = json.loads(sig.read_text())["verificationMaterial"]
    assert "publicKey" not in material
    raw = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
    assert x509.load_der_x509_certificate(base64.b64decode(raw)) == leaf

    done = upstream_verify_certificate(root, sig, lab.write(tmp_path / "lab-ca.pem"))
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout
    foreign = upstream_verify_certificate(root, sig, other.write(tmp_path / "other-ca.pem"))
    assert foreign.returncode == 1
    # The bundle ends with the lab's root, which the other CA's store does not hold.
    assert "self-signed certificate in certificate chain" in foreign.stderr

    # weightgate verify: the key pinned from release-keys.json signed it.
    trust = TrustStore(
        keys=[
            PinnedKey(
                key_id=published["key_id"],
                public_key=published["public_key"],
                source="https://weights.example",
                pinned_at=clock.now().isoformat(),
            )
        ]
    )
    report = check_signatures(root, trust=trust, digest=lambda p: sha256((root / p).read_bytes()))
    assert report.good, [r.problems for r in report.results]
    assert report.results[0].verified == ["w.safetensors"]
    assert report.results[0].key_id == published["key_id"]


def test_certificate_problems_are_refused_at_startup_and_at_publish(
    settings: Settings,
    clock: FixedClock,
    store: ObjectStore,
    engine: Engine,
    session_factory: sessionmaker[Session],
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    lab = Ca.make("Acme Lab Root CA", clock.now())
    key = ec.generate_private_key(ec.SECP256R1())
    now = clock.now()
    expired = lab.issue(
        key.public_key(), not_before=now - timedelta(days=400), not_after=now - timedelta(days=35)
    )
    stranger = lab.issue(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        not_before=now,
        not_after=now + timedelta(days=9),
    )
    cases = {
        "the release-signing certificate 'CN=weightgate release signing,O=Acme Lab' expired on "
        f"{expired.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC; configure a renewed one": (expired,),
        "the first certificate ('CN=weightgate release signing,O=Acme Lab') is not for the "
        "configured release key": (stranger,),
        "is not issued by the next certificate, 'CN=Other Root CA,O=Acme Lab'": (
            lab.issue(key.public_key(), not_before=now, not_after=now + timedelta(days=9)),
            Ca.make("Other Root CA", now).cert,
        ),
    }
    for message, chain in cases.items():
        with pytest.raises(KeyConfigError) as raised:
            create_app(
                certified(settings, tmp_path, key, *chain),
                clock=clock,
                store=store,
                engine=engine,
                run_background=False,
            )
        assert message in str(raised.value)
    alone = settings.model_copy(
        update={"release_certificate_chain": tmp_path / "release-chain.pem"}
    )
    with pytest.raises(KeyConfigError, match="certifies a configured key"):
        create_app(alone, clock=clock, store=store, engine=engine, run_background=False)

    # Valid at startup, expired by the time of the publish: nothing is signed or published.
    short = lab.issue(key.public_key(), not_before=now, not_after=now + timedelta(days=1))
    with serve(
        certified(settings, tmp_path, key, short),
        clock=clock,
        store=store,
        engine=engine,
        session_factory=session_factory,
    ) as client:
        publish_release(client, admin_headers, publish=False)
        clock.advance(days=2)
        r = client.post("/v1/models/acme/atlas-7b/releases/v1/publish", headers=admin_headers)
        assert r.status_code == 503
        assert r.json()["code"] == "signing_unavailable"
        assert "expired on" in r.json()["detail"]
        release = check(
            client.get("/v1/models/acme/atlas-7b/releases/v1", headers=admin_headers), 200
        )
        assert release["status"] == "draft"
