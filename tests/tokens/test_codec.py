"""The JWT codec refuses every malformed, forged or misused token with its own code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwe

from app.clock import FixedClock
from app.errors import TokenInvalid
from app.settings import Settings
from app.tokens import codec
from app.tokens.keys import KeySet, load_key_set, new_private_key
from tests.tokens.forge import b64, change_payload, change_signature, forge, segment

ISS = "weightgate"
EXPECT = codec.Expectation(
    typ=codec.DOWNLOAD_TYP,
    audience="weightgate-download",
    issuer=ISS,
    max_lifetime=24 * 3600,
    leeway=5,
)


@pytest.fixture
def keys(settings: Settings, clock: FixedClock) -> KeySet:
    return load_key_set(settings, now=clock.now())


def claims(clock: FixedClock, **over: Any) -> dict[str, Any]:
    t = int(clock.now().timestamp())
    base = {
        "iss": ISS,
        "sub": "user:1",
        "aud": "weightgate-download",
        "iat": t,
        "nbf": t,
        "exp": t + 900,
        "jti": "j1",
    }
    base.update(over)
    return base


def signed(keys: KeySet, clock: FixedClock, **over: Any) -> str:
    return codec.sign(
        claims(clock, **over), typ=codec.DOWNLOAD_TYP, key=keys.signing_key(clock.now())
    )


def refused(
    token: object, keys: KeySet, clock: FixedClock, expect: codec.Expectation = EXPECT
) -> str:
    with pytest.raises(TokenInvalid) as info:
        codec.verify(token, keys=keys, expect=expect, now=clock.now())
    assert info.value.status == 401
    assert token not in info.value.detail if isinstance(token, str) and token else True
    return info.value.code


def test_a_token_we_signed_verifies_with_every_claim(keys: KeySet, clock: FixedClock) -> None:
    token = signed(keys, clock)
    out = codec.verify(token, keys=keys, expect=EXPECT, now=clock.now())
    assert out == claims(clock)
    header = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {
        "alg": "ES256",
        "kid": keys.signing_key(clock.now()).kid,
        "typ": codec.DOWNLOAD_TYP,
    }


def test_alg_none_is_refused(keys: KeySet, clock: FixedClock) -> None:
    kid = keys.signing_key(clock.now()).kid
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "kid": kid, "typ": codec.DOWNLOAD_TYP}, claims(clock))
        assert refused(token, keys, clock) == "token_unsigned"


def test_hs256_signed_with_our_public_key_is_refused(keys: KeySet, clock: FixedClock) -> None:
    key = keys.signing_key(clock.now())
    public_pem = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = forge(
        {"alg": "HS256", "kid": key.kid, "typ": codec.DOWNLOAD_TYP},
        claims(clock),
        hmac_secret=public_pem,
    )
    assert refused(token, keys, clock) == "token_algorithm_refused"


def test_unknown_kid_and_foreign_key_are_refused(keys: KeySet, clock: FixedClock) -> None:
    foreign = new_private_key()
    token = forge(
        {"alg": "ES256", "kid": "nope", "typ": codec.DOWNLOAD_TYP}, claims(clock), key=foreign
    )
    assert refused(token, keys, clock) == "token_unknown_key"
    # Our kid, someone else's key: the signature does not verify with our key.
    ours = keys.signing_key(clock.now()).kid
    token = forge(
        {"alg": "ES256", "kid": ours, "typ": codec.DOWNLOAD_TYP}, claims(clock), key=foreign
    )
    assert refused(token, keys, clock) == "token_bad_signature"


@pytest.mark.parametrize(
    "header", [{"jku": "https://evil.example/jwks"}, {"jwk": {"kty": "EC"}}, {"x5u": "x"}]
)
def test_key_pointers_in_the_header_are_refused(
    keys: KeySet, clock: FixedClock, header: dict[str, Any]
) -> None:
    key = keys.signing_key(clock.now())
    token = forge(
        {"alg": "ES256", "kid": key.kid, "typ": codec.DOWNLOAD_TYP, **header},
        claims(clock),
        key=key.private,
    )
    assert refused(token, keys, clock) == "token_header_refused"


def test_expired_including_exp_equal_to_now(keys: KeySet, clock: FixedClock) -> None:
    token = signed(keys, clock)
    clock.advance(899)
    codec.verify(token, keys=keys, expect=EXPECT, now=clock.now())
    clock.advance(1)  # now == exp
    assert refused(token, keys, clock) == "token_expired"
    clock.advance(3600)
    assert refused(token, keys, clock) == "token_expired"


def test_not_yet_valid_and_issued_in_future(keys: KeySet, clock: FixedClock) -> None:
    t = int(clock.now().timestamp())
    assert refused(signed(keys, clock, nbf=t + 60), keys, clock) == "token_not_yet_valid"
    token = signed(keys, clock, iat=t + 60, nbf=t + 60, exp=t + 900)
    assert refused(token, keys, clock) == "token_issued_in_future"
    # Within the leeway, replicas' small clock differences do not refuse a fresh token.
    codec.verify(
        signed(keys, clock, iat=t + 3, nbf=t + 3), keys=keys, expect=EXPECT, now=clock.now()
    )


def test_lifetime_over_the_maximum_is_refused(keys: KeySet, clock: FixedClock) -> None:
    t = int(clock.now().timestamp())
    token = signed(keys, clock, exp=t + 24 * 3600 + 1)
    assert refused(token, keys, clock) == "token_lifetime_too_long"


def test_wrong_audience_issuer_and_type(keys: KeySet, clock: FixedClock) -> None:
    assert refused(signed(keys, clock, aud="weightgate-api"), keys, clock) == "token_wrong_audience"
    assert (
        refused(signed(keys, clock, aud=["weightgate-download"]), keys, clock) == "token_bad_claim"
    )
    assert (
        refused(signed(keys, clock, iss="https://evil.example"), keys, clock)
        == "token_wrong_issuer"
    )
    partner = codec.sign(
        claims(clock, aud="weightgate-api"),
        typ=codec.PARTNER_ACCESS_TYP,
        key=keys.signing_key(clock.now()),
    )
    assert refused(partner, keys, clock) == "token_wrong_type"


def test_changed_payload_and_changed_signature(keys: KeySet, clock: FixedClock) -> None:
    token = signed(keys, clock)
    assert refused(change_payload(token, sub="user:2"), keys, clock) == "token_bad_signature"
    assert refused(change_signature(token), keys, clock) == "token_bad_signature"


def test_non_canonical_base64_is_refused(keys: KeySet, clock: FixedClock) -> None:
    token = signed(keys, clock)
    h, p, s = token.split(".")
    # 64 signature bytes are 86 base64url characters; the last one carries 4 unused bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    twin = alphabet[last ^ 0b0001]
    assert refused(f"{h}.{p}.{s[:-1]}{twin}", keys, clock) == "token_malformed"


def test_crit_header_is_refused_even_when_signed(keys: KeySet, clock: FixedClock) -> None:
    key = keys.signing_key(clock.now())
    token = forge(
        {"alg": "ES256", "kid": key.kid, "typ": codec.DOWNLOAD_TYP, "crit": ["exp"]},
        claims(clock),
        key=key.private,
    )
    assert refused(token, keys, clock) == "token_crit_refused"


@pytest.mark.parametrize("bad", ["1999999999", None, [1999999999], 1999999999.5, True, {"v": 1}])
def test_exp_of_the_wrong_type_is_refused(keys: KeySet, clock: FixedClock, bad: Any) -> None:
    assert refused(signed(keys, clock, exp=bad), keys, clock) == "token_bad_claim"


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"])
def test_every_registered_claim_is_required(keys: KeySet, clock: FixedClock, claim: str) -> None:
    body = claims(clock)
    del body[claim]
    token = codec.sign(body, typ=codec.DOWNLOAD_TYP, key=keys.signing_key(clock.now()))
    assert refused(token, keys, clock) == "token_missing_claim"


def test_oversized_token_is_refused_before_decoding(keys: KeySet, clock: FixedClock) -> None:
    token = signed(keys, clock, jti="x" * 200, sub="user:1")
    padded = token + "A" * (20 * 1024 - len(token))
    assert refused(padded, keys, clock) == "token_too_large"
    # Exactly at the limit it is read (and fails for what it is, not for its size).
    assert refused("A" * codec.MAX_TOKEN_BYTES, keys, clock) == "token_malformed"


def test_jwe_is_refused(keys: KeySet, clock: FixedClock) -> None:
    token = jwe.encrypt(json.dumps(claims(clock)), b"k" * 16, algorithm="dir", encryption="A128GCM")
    text = token.decode() if isinstance(token, bytes) else token
    assert text.count(".") == 4
    assert refused(text, keys, clock) == "token_encrypted"


DUPLICATE_ALG = b64(b'{"alg":"ES256","alg":"none"}') + "." + segment({}) + ".AA"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "é.b.c",
        "!!!.b.c",
        f"{segment([1, 2])}.{segment({})}.AA",
        f"{b64(b'{not json')}.{segment({})}.AA",
        DUPLICATE_ALG,
        None,
        12,
        b"bytes.are.refused",
    ],
)
def test_garbage_is_a_401_never_a_500(keys: KeySet, clock: FixedClock, token: object) -> None:
    assert refused(token, keys, clock) in ("token_malformed", "token_unsigned")


def test_duplicate_claims_are_refused(keys: KeySet, clock: FixedClock) -> None:
    key = keys.signing_key(clock.now())
    body = json.dumps(claims(clock))[:-1] + ',"sub":"user:2"}'
    token = forge(
        {"alg": "ES256", "kid": key.kid, "typ": codec.DOWNLOAD_TYP},
        None,
        key=key.private,
        raw_payload=b64(body.encode()),
    )
    assert refused(token, keys, clock) == "token_malformed"


def test_wrong_length_signature_is_refused(keys: KeySet, clock: FixedClock) -> None:
    h, p, _ = signed(keys, clock).split(".")
    assert refused(f"{h}.{p}.{b64(b'x' * 65)}", keys, clock) == "token_bad_signature"


def test_times_must_be_ordered(keys: KeySet, clock: FixedClock) -> None:
    t = int(clock.now().timestamp())
    assert refused(signed(keys, clock, nbf=t - 10), keys, clock) == "token_bad_claim"
    token = signed(keys, clock, iat=t - 20, nbf=t + 3, exp=t + 2)
    assert refused(token, keys, clock) == "token_bad_claim"


def test_a_remembered_signature_skips_no_other_check(
    keys: KeySet, clock: FixedClock, settings: Settings, tmp_path: Any
) -> None:
    # Verified once, the token's signature is remembered (a download token is redeemed once
    # per file); everything that can change since is still checked on every use.
    token = signed(keys, clock)
    assert codec.verify(token, keys=keys, expect=EXPECT, now=clock.now()) == claims(clock)
    # Its key no longer ours (a key set without it): refused, not served from memory.
    other = load_key_set(
        settings.model_copy(update={"data_dir": tmp_path / "elsewhere"}), now=clock.now()
    )
    assert other.verification_key(keys.signing_key(clock.now()).kid, clock.now()) is None
    assert refused(token, other, clock) == "token_unknown_key"
    # Another route's expectation: refused for its type.
    partner_route = codec.Expectation(
        typ=codec.PARTNER_ACCESS_TYP,
        audience="weightgate-api",
        issuer=ISS,
        max_lifetime=3600,
        leeway=5,
    )
    assert refused(token, keys, clock, partner_route) == "token_wrong_type"
    # Time moves on: expired, with the holder named (the claims are ours).
    clock.advance(900)
    with pytest.raises(codec.SignedButRefused) as info:
        codec.verify(token, keys=keys, expect=EXPECT, now=clock.now())
    assert info.value.code == "token_expired"
    assert info.value.claims["sub"] == "user:1"
