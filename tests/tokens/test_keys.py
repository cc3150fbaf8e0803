"""Signing keys: first-start generation, env keys, rotation windows, JWKS, the keys CLI."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.clock import FixedClock
from app.errors import TokenInvalid
from app.settings import Settings
from app.tokens import codec
from app.tokens.keys import (
    KeyConfigError,
    KeySet,
    load_key_set,
    new_private_key,
    private_pem,
    retention_for,
    rotate,
    thumbprint,
)
from tests.fixtures.parts import app_parts

EXPECT = codec.Expectation(
    typ=codec.DOWNLOAD_TYP, audience="a", issuer="i", max_lifetime=24 * 3600, leeway=5
)


def token_at(keys: KeySet, clock: FixedClock, ttl: int = 900) -> str:
    t = int(clock.now().timestamp())
    body = {"iss": "i", "sub": "user:1", "aud": "a", "iat": t, "nbf": t, "exp": t + ttl, "jti": "j"}
    return codec.sign(body, typ=codec.DOWNLOAD_TYP, key=keys.signing_key(clock.now()))


def verifies(token: str, keys: KeySet, clock: FixedClock) -> str:
    try:
        codec.verify(token, keys=keys, expect=EXPECT, now=clock.now())
    except TokenInvalid as e:
        return e.code
    return "ok"


def test_first_start_generates_one_private_key_readable_by_owner_only(
    settings: Settings, clock: FixedClock
) -> None:
    keys = load_key_set(settings, now=clock.now())
    files = list(settings.effective_keys_dir.glob("es256-*.pem"))
    assert [f.name for f in files] == ["es256-20260601T120000Z.pem"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.effective_keys_dir.stat().st_mode) == 0o700
    again = load_key_set(settings, now=clock.now())
    assert again.signing_key(clock.now()).kid == keys.signing_key(clock.now()).kid
    assert len(list(settings.effective_keys_dir.glob("es256-*.pem"))) == 1


def test_production_without_a_key_refuses_to_start(settings: Settings, clock: FixedClock) -> None:
    prod = settings.model_copy(update={"environment": "production"})
    with pytest.raises(KeyConfigError, match="keys rotate"):
        load_key_set(prod, now=clock.now())
    assert not list(prod.effective_keys_dir.glob("*.pem"))


def test_env_keys_first_signs_others_verify(settings: Settings, clock: FixedClock) -> None:
    old, new = new_private_key(), new_private_key()
    env = settings.model_copy(
        update={"signing_key_pem": private_pem(new).decode() + "\n" + private_pem(old).decode()}
    )
    keys = load_key_set(env, now=clock.now())
    assert keys.signing_key(clock.now()).kid == thumbprint(new.public_key())
    assert {k["kid"] for k in keys.jwks(clock.now())["keys"]} == {
        thumbprint(new.public_key()),
        thumbprint(old.public_key()),
    }
    # Nothing is generated on disk when keys come from the environment.
    assert not settings.effective_keys_dir.exists()


@pytest.mark.parametrize(
    "pem",
    [
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        private_pem(ec.generate_private_key(ec.SECP384R1())).decode(),
    ],
)
def test_unusable_env_keys_are_refused(settings: Settings, clock: FixedClock, pem: str) -> None:
    with pytest.raises(KeyConfigError):
        load_key_set(settings.model_copy(update={"signing_key_pem": pem}), now=clock.now())


def test_rotation_old_key_verifies_until_its_last_token_expires(
    settings: Settings, clock: FixedClock
) -> None:
    keys = load_key_set(settings, now=clock.now())
    first = keys.signing_key(clock.now())
    clock.advance(3600)
    old_token = token_at(keys, clock, ttl=settings.token_max_ttl)
    new, removed = rotate(settings, now=clock.now())
    assert removed == []
    keys.reload()
    assert keys.signing_key(clock.now()).kid == new.kid != first.kid
    assert {k["kid"] for k in keys.jwks(clock.now())["keys"]} == {first.kid, new.kid}
    assert verifies(old_token, keys, clock) == "ok"
    retention = retention_for(settings)
    clock.advance(retention.total_seconds() - 1)
    # The old token itself has expired by now; the key is still published for stragglers.
    assert verifies(old_token, keys, clock) == "token_expired"
    assert first.kid in {k["kid"] for k in keys.jwks(clock.now())["keys"]}
    clock.advance(1)
    assert [k["kid"] for k in keys.jwks(clock.now())["keys"]] == [new.kid]
    assert verifies(old_token, keys, clock) == "token_unknown_key"
    # The next rotation deletes the file of the key that no longer verifies.
    _, removed = rotate(settings, now=clock.now())
    assert removed == ["es256-20260601T120000Z.pem"]


def test_activate_in_announces_before_signing(settings: Settings, clock: FixedClock) -> None:
    keys = load_key_set(settings, now=clock.now())
    first = keys.signing_key(clock.now())
    new, _ = rotate(settings, now=clock.now(), activate_in=60)
    keys.reload()
    assert keys.signing_key(clock.now()).kid == first.kid
    assert new.kid in {k["kid"] for k in keys.jwks(clock.now())["keys"]}
    clock.advance(60)
    assert keys.signing_key(clock.now()).kid == new.kid


def test_a_replica_picks_up_a_key_rotated_elsewhere(settings: Settings, clock: FixedClock) -> None:
    replica_a = load_key_set(settings, now=clock.now())
    replica_b = load_key_set(settings, now=clock.now())
    clock.advance(1)
    rotate(settings, now=clock.now())
    replica_a.reload()
    token = token_at(replica_a, clock)
    # B has not re-read the directory yet; the unknown kid makes it look (at most 1/s).
    replica_b._loaded -= 2
    assert verifies(token, replica_b, clock) == "ok"


def test_kid_is_the_public_key_thumbprint_and_stable(settings: Settings, clock: FixedClock) -> None:
    key = new_private_key()
    assert thumbprint(key.public_key()) == thumbprint(key.public_key())
    assert len(thumbprint(key.public_key())) == 43
    assert thumbprint(key.public_key()) != thumbprint(new_private_key().public_key())


def test_jwks_route_publishes_public_keys_only(client: TestClient, clock: FixedClock) -> None:
    resp = client.get("/.well-known/jwks.json")
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "public, max-age=300"
    (key,) = resp.json()["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert key["alg"] == "ES256"
    assert key["crv"] == "P-256"
    assert key["use"] == "sig"
    assert key["kid"] == app_parts(client.app).keys.signing_key(clock.now()).kid


def test_keys_cli_rotate_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import get_settings

    monkeypatch.setenv("WEIGHTGATE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("WEIGHTGATE_SIGNING_KEY_PEM", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        empty = runner.invoke(cli, ["keys", "list"])
        assert empty.exit_code == 0, empty.output
        assert "no keys" in empty.output
        first = runner.invoke(cli, ["keys", "rotate"])
        assert first.exit_code == 0, first.output
        assert first.output.startswith("new key ")
        second = runner.invoke(cli, ["keys", "rotate", "--activate-in", "120"])
        assert second.exit_code == 0, second.output
        listing = runner.invoke(cli, ["keys", "list"])
        lines = listing.output.strip().splitlines()
        assert len(lines) == 2
        assert " signing " in lines[0]
        assert " pending " in lines[1]
        assert "PRIVATE" not in listing.output
        monkeypatch.setenv("WEIGHTGATE_SIGNING_KEY_PEM", private_pem(new_private_key()).decode())
        get_settings.cache_clear()
        refused = runner.invoke(cli, ["keys", "rotate"])
        assert refused.exit_code == 1
        assert "WEIGHTGATE_SIGNING_KEY_PEM" in refused.output
    finally:
        get_settings.cache_clear()


def test_rotating_twice_in_one_second_is_refused(settings: Settings, clock: FixedClock) -> None:
    load_key_set(settings, now=clock.now())
    with pytest.raises(KeyConfigError, match="already exists"):
        rotate(settings, now=clock.now() + timedelta(microseconds=10))
