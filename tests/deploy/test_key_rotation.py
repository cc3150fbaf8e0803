"""Rotating the signing key on Kubernetes, where the keys directory is a Secret mounted
read-only and every change of it is a rolling update (deploy/k8s/kustomization.yaml): for
a while, pods with the old Secret and pods with the new one serve side by side, and a
token signed by either kind must verify on both. The two phases of docs/deployment.md
("Rotating the signing key") guarantee it; doing it in one step does not.

Each "pod" here is the key set a replica loads from its copy of the Secret, in production
(where the directory is only read: a read-only mount cannot even hold a lock file)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import product
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.errors import TokenInvalid
from app.settings import Settings
from app.tokens import codec
from app.tokens.keys import (
    KeyConfigError,
    KeySet,
    key_file_name,
    load_key_set,
    new_private_key,
    private_pem,
)
from tests.conftest import T0

FIRST = "es256-19700101T000000Z.pem"  # the first key, active from the start
EXPECT = codec.Expectation(
    typ=codec.DOWNLOAD_TYP,
    audience="weightgate-download",
    issuer="weightgate",
    max_lifetime=24 * 3600,
    leeway=5,
)
Secret = dict[str, ec.EllipticCurvePrivateKey]


class Rollout:
    """Pods made from Secrets as the kubelet mounts them: one directory per version."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.count = 0

    def pod(self, secret: Secret, now: datetime) -> KeySet:
        self.count += 1
        mount = self.tmp_path / f"secret-{self.count}"
        mount.mkdir()
        for name, key in secret.items():
            (mount / name).write_bytes(private_pem(key))
        settings = Settings(_env_file=None, environment="production", keys_dir=mount)
        keys = load_key_set(settings, now=now)
        assert not (mount / ".lock").exists()  # nothing written to the mount
        return keys


def token(pod: KeySet, now: datetime) -> str:
    t = int(now.timestamp())
    claims = {
        "iss": "weightgate",
        "sub": "user:1",
        "aud": "weightgate-download",
        "iat": t,
        "nbf": t,
        "exp": t + 900,
        "jti": f"j{t}",
    }
    return codec.sign(claims, typ=codec.DOWNLOAD_TYP, key=pod.signing_key(now))


def mixed(old: KeySet, new: KeySet, now: datetime) -> None:
    """Mid-rollout: a token signed by either kind of pod verifies on both."""
    for signer, verifier in product((old, new), repeat=2):
        codec.verify(token(signer, now), keys=verifier, expect=EXPECT, now=now)


@pytest.fixture
def pods(tmp_path: Path) -> Rollout:
    codec.clear_signature_cache()
    return Rollout(tmp_path)


def test_two_phases_survive_both_rolling_updates(pods: Rollout) -> None:
    old, new = new_private_key(), new_private_key()
    before = pods.pod({FIRST: old}, T0)

    # Phase 1: the new key joins the Secret with an activation far away: every pod that
    # rolls out knows it (and publishes it in the JWKS) but keeps signing with the old one.
    published_at = T0
    parked = key_file_name(published_at + timedelta(days=365))
    phase1 = pods.pod({FIRST: old, parked: new}, published_at)
    mixed(before, phase1, published_at)
    assert phase1.signing_key(published_at).kid == before.signing_key(published_at).kid
    kids = {k["kid"] for k in phase1.jwks(published_at)["keys"]}
    assert len(kids) == 2

    # Phase 2, once `kubectl rollout status` said phase 1 is everywhere: the same key under
    # the name of its real activation, now. New pods sign with it; pods still on phase 1
    # verify it, since they know it.
    switched_at = published_at + timedelta(hours=1)
    active = key_file_name(switched_at)
    phase2 = pods.pod({FIRST: old, active: new}, switched_at)
    mixed(phase1, phase2, switched_at)
    assert phase2.signing_key(switched_at).kid != phase1.signing_key(switched_at).kid
    assert phase2.signing_key(switched_at).kid in kids

    # Phase 3, after the longest token lifetime: the old key leaves the Secret.
    retired_at = switched_at + timedelta(hours=24, seconds=10)
    phase3 = pods.pod({active: new}, retired_at)
    mixed(phase2, phase3, retired_at)


def test_one_step_rotation_breaks_mid_rollout(pods: Rollout) -> None:
    """The new key signing as soon as it is in the Secret: a pod still on the old Secret
    refuses what a new pod signed until the rollout ends."""
    old, new = new_private_key(), new_private_key()
    before = pods.pod({FIRST: old}, T0)
    after = pods.pod({FIRST: old, key_file_name(T0): new}, T0)
    with pytest.raises(TokenInvalid) as refused:
        codec.verify(token(after, T0), keys=before, expect=EXPECT, now=T0)
    assert refused.value.status == 401


def test_a_pod_without_any_key_refuses_to_start(tmp_path: Path) -> None:
    mount = tmp_path / "empty-secret"
    mount.mkdir()
    settings = Settings(_env_file=None, environment="production", keys_dir=mount)
    with pytest.raises(KeyConfigError, match="no signing key"):
        load_key_set(settings, now=T0)
