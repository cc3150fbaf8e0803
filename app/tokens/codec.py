"""Signing and verifying our JWTs: the only module that imports python-jose.

python-jose is lenient by default (it accepts whatever ``alg`` the header names if the key
allows it, coerces ``"123"`` to a number for ``exp``, ignores ``crit``). So it is used only
for what it is good at, the ES256 signature, behind checks done here first:

- the token is at most 8 KB, plain base64url JWS compact form (a JWE, with five segments, is
  refused), every segment canonical base64url, JSON without duplicate keys;
- the header holds only ``alg``, ``kid`` and ``typ``: ``crit`` (and any other member, such as
  ``jku``/``jwk``/``x5u`` that would point at a key we do not own) is refused;
- ``alg`` is ``ES256``, ``kid`` names a key of our own :class:`~app.tokens.keys.KeySet`,
  ``typ`` is the kind the caller expects (download tokens and partner access tokens can never
  stand in for each other);
- every registered claim is present with its exact JSON type (integers for times, strings
  for the rest), ``iss`` and ``aud`` match, ``exp`` is strictly in the future (``exp == now``
  is expired), ``nbf``/``iat`` are not in the future beyond the leeway, and the lifetime is
  within the maximum.

Every failure is :class:`~app.errors.TokenInvalid` (401) with a ``code`` saying which check
failed; nothing from python-jose, ``TypeError`` or ``ValueError`` escapes as a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jose import jws
from jose.backends.base import Key
from jose.backends.cryptography_backend import CryptographyECKey
from jose.exceptions import JOSEError

from app.errors import TokenInvalid
from app.lru import LRU
from app.tokens.keys import KeySet, SigningKey

ALGORITHM = "ES256"
MAX_TOKEN_BYTES = 8 * 1024
DOWNLOAD_TYP = "wg-download+jwt"
# RFC 9068's media type for JWT access tokens.
PARTNER_ACCESS_TYP = "at+jwt"
KNOWN_TYPS = frozenset({DOWNLOAD_TYP, PARTNER_ACCESS_TYP})
REGISTERED = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti")
_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")
_MAX_STR_CLAIM = 256


@dataclass(frozen=True)
class Expectation:
    """What a caller requires of a token besides a valid signature."""

    typ: str
    audience: str
    issuer: str
    max_lifetime: int
    leeway: int


class SignedButRefused(TokenInvalid):
    """A token whose signature verified but whose claims are refused (expired, wrong
    audience, …). The claims are ours, so the audit event may name the holder and jti."""

    def __init__(self, error: TokenInvalid, claims: dict[str, Any]) -> None:
        super().__init__(error.detail, code=error.code)
        self.claims = claims


# jose key objects per kid. A kid is the key's thumbprint, so one kid is one key forever:
# building the objects once spares a PEM parse (and key validation) per request.
_jose_keys: dict[str, tuple[Key, Key]] = {}


def _jose_pair(key: SigningKey) -> tuple[Key, Key]:
    pair = _jose_keys.get(key.kid)
    if pair is None:
        pair = (
            CryptographyECKey(key.private, ALGORITHM),
            CryptographyECKey(key.public, ALGORITHM),
        )
        _jose_keys[key.kid] = pair
    return pair


def sign(claims: Mapping[str, Any], *, typ: str, key: SigningKey) -> str:
    if typ not in KNOWN_TYPS:
        raise ValueError(f"unknown token type {typ!r}")
    private, _ = _jose_pair(key)
    return jws.sign(
        dict(claims), private, headers={"kid": key.kid, "typ": typ}, algorithm=ALGORITHM
    )


def _refuse(code: str, detail: str) -> TokenInvalid:
    return TokenInvalid(detail, code=code)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate member")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _segment_json(segment: str, what: str) -> dict[str, Any]:
    raw = _b64decode(segment, what)
    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise _refuse("token_malformed", f"token {what} is not a JSON object") from e
    if not isinstance(value, dict):
        raise _refuse("token_malformed", f"token {what} is not a JSON object")
    return value


def _b64decode(segment: str, what: str) -> bytes:
    if not segment or not _SEGMENT.match(segment) or len(segment) % 4 == 1:
        raise _refuse("token_malformed", f"token {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as e:
        raise _refuse("token_malformed", f"token {what} is not base64url") from e
    # One token, one spelling: unused trailing bits must be zero, so a "changed" token
    # cannot decode to the same bytes as the one we issued.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise _refuse("token_malformed", f"token {what} is not canonical base64url")
    return raw


def _check_header(header: dict[str, Any], expect: Expectation) -> str:
    if "crit" in header:
        raise _refuse("token_crit_refused", "token header has critical extensions")
    if "enc" in header:
        raise _refuse("token_encrypted", "encrypted tokens (JWE) are not accepted")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise _refuse("token_unsigned", "unsigned tokens are not accepted")
    if alg != ALGORITHM:
        raise _refuse("token_algorithm_refused", f"only {ALGORITHM} tokens are accepted")
    extra = set(header) - _HEADER_MEMBERS
    if extra:
        raise _refuse("token_header_refused", "token header has members we do not accept")
    typ = header.get("typ")
    if typ != expect.typ:
        kind = "a partner access token" if typ == PARTNER_ACCESS_TYP else "a download token"
        if typ not in KNOWN_TYPS:
            kind = "not one of our token types"
        raise _refuse("token_wrong_type", f"this credential is {kind}, not what this route takes")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 64:
        raise _refuse("token_unknown_key", "token names no signing key of ours")
    return kid


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if type(value) is not int:  # bool is an int subclass; floats and strings are refused
        raise _refuse("token_bad_claim", f"claim {name} must be an integer")
    return value


def _str_claim(claims: dict[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value or len(value) > _MAX_STR_CLAIM:
        raise _refuse("token_bad_claim", f"claim {name} must be a non-empty string")
    return value


def _check_claims(claims: dict[str, Any], expect: Expectation, now: datetime) -> None:
    missing = [c for c in REGISTERED if c not in claims]
    if missing:
        raise _refuse("token_missing_claim", f"token lacks claim {missing[0]}")
    for name in ("iss", "sub", "aud", "jti"):
        _str_claim(claims, name)
    iat, nbf, exp = (_int_claim(claims, n) for n in ("iat", "nbf", "exp"))
    if claims["iss"] != expect.issuer:
        raise _refuse("token_wrong_issuer", "token was not issued by this server")
    if claims["aud"] != expect.audience:
        raise _refuse("token_wrong_audience", "token is meant for another audience")
    t = now.timestamp()
    if t >= exp:
        raise _refuse("token_expired", "token has expired")
    if iat > t + expect.leeway:
        raise _refuse("token_issued_in_future", "token claims to be issued in the future")
    if nbf > t + expect.leeway:
        raise _refuse("token_not_yet_valid", "token is not valid yet")
    if not iat <= nbf < exp:
        raise _refuse("token_bad_claim", "token times are inconsistent")
    if exp - iat > expect.max_lifetime:
        raise _refuse("token_lifetime_too_long", "token lives longer than this server allows")


def verify(token: object, *, keys: KeySet, expect: Expectation, now: datetime) -> dict[str, Any]:
    """The verified claims of ``token``; :class:`TokenInvalid` with a reason otherwise."""
    if not isinstance(token, str) or not token:
        raise _refuse("token_malformed", "no token")
    if len(token) > MAX_TOKEN_BYTES:
        raise _refuse("token_too_large", f"tokens are at most {MAX_TOKEN_BYTES} bytes")
    if not token.isascii():
        raise _refuse("token_malformed", "token is not base64url")
    parts = token.split(".")
    if len(parts) == 5:
        raise _refuse("token_encrypted", "encrypted tokens (JWE) are not accepted")
    if len(parts) != 3:
        raise _refuse("token_malformed", "token is not a compact JWS")
    seen = _signatures.get(token)
    if seen is not None:
        # Checked before, down to the signature: only what can change since is checked again
        # (the key still ours, the header what this caller expects, every claim at ``now``).
        header, claims = seen
        if keys.verification_key(_check_header(header, expect), now) is None:
            raise _refuse("token_unknown_key", "token names no signing key of ours")
        return _checked_claims(claims, expect, now)
    header = _segment_json(parts[0], "header")
    kid = _check_header(header, expect)
    key = keys.verification_key(kid, now)
    if key is None:
        raise _refuse("token_unknown_key", "token names no signing key of ours")
    if len(_b64decode(parts[2], "signature")) != 64:
        raise _refuse("token_bad_signature", "token signature is invalid")
    _, public = _jose_pair(key)
    try:
        jws.verify(token, public, algorithms=[ALGORITHM])
    except JOSEError as e:
        raise _refuse("token_bad_signature", "token signature is invalid") from e
    except (TypeError, ValueError) as e:
        raise _refuse("token_malformed", "token could not be read") from e
    claims = _segment_json(parts[1], "payload")
    _signatures.put(token, (header, claims))
    return _checked_claims(claims, expect, now)


def _checked_claims(claims: dict[str, Any], expect: Expectation, now: datetime) -> dict[str, Any]:
    try:
        _check_claims(claims, expect, now)
    except TokenInvalid as e:
        raise SignedButRefused(e, dict(claims)) from None
    return dict(claims)


# Tokens whose signature verified, with their decoded header and claims. A download token
# is redeemed once per file (a model is dozens of files) and again for every resumed range,
# and the ES256 verification is most of a redemption's CPU outside the database. Keyed by
# the whole token, so a token differing in one byte is verified from scratch; a hit skips
# only the signature and the decoding, never a check that depends on time, on our key set
# or on what the caller expects.
# At most ~20 MB even if every token were the largest we accept (8 KB plus its decoding).
_signatures: LRU[str, tuple[dict[str, Any], dict[str, Any]]] = LRU(max_entries=2048)


def clear_signature_cache() -> None:
    """Forget every verified signature (benchmarks measure the first verification)."""
    _signatures.clear()
