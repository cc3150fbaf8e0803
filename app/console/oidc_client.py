"""OpenID Connect, the relying party's half: discovery, the authorization URL (code flow with
PKCE S256, state and nonce), the code exchange and the ID token's checks. authlib builds
the requests; joserfc (authlib's own JOSE library) verifies the ID token against the
provider's published keys. No database here: the caller decides who the identity is."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.errors import Unauthorized

log = logging.getLogger(__name__)
# Discovery documents and key sets are fetched again after this long (keys rotate).
_CACHE_SECONDS = 300
_TIMEOUT = 10.0
_ALGORITHMS = ["RS256", "ES256", "PS256", "RS384", "ES384", "RS512", "EdDSA"]
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


class SignInRefused(Unauthorized):
    """The provider's answer does not let this person in; the detail says why."""

    default_code = "oidc_refused"


@dataclass(frozen=True)
class Pending:
    """What the browser keeps (in a short-lived cookie) between leaving for the provider and
    coming back: checked on the way back."""

    state: str
    nonce: str
    verifier: str
    next: str

    def encode(self) -> str:
        return ".".join((self.state, self.nonce, self.verifier, self.next))

    @classmethod
    def decode(cls, value: str) -> Pending | None:
        parts = value.split(".", 3)
        return cls(*parts) if len(parts) == 4 else None


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    name: str


def _get_json(url: str) -> dict[str, Any]:
    cached = _cache.get(url)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        response = httpx.get(url, timeout=_TIMEOUT)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as e:
        raise SignInRefused("the identity provider did not answer; try again later") from e
    if not isinstance(body, dict):
        raise SignInRefused("the identity provider's answer was not understood")
    _cache[url] = (time.monotonic() + _CACHE_SECONDS, body)
    return body


def metadata(issuer: str) -> dict[str, Any]:
    return _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")


def _client(
    client_id: str, client_secret: str | None, redirect_uri: str, scope: str
) -> OAuth2Client:
    return OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=_TIMEOUT,
    )


def start(
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
    scope: str,
    next: str,
) -> tuple[str, Pending]:
    """The provider URL to send the browser to, and what to keep until it comes back."""
    pending = Pending(generate_token(32), generate_token(32), generate_token(64), next)
    with _client(client_id, client_secret, redirect_uri, scope) as client:
        url, _ = client.create_authorization_url(
            metadata(issuer)["authorization_endpoint"],
            state=pending.state,
            code_verifier=pending.verifier,
            nonce=pending.nonce,
        )
    return url, pending


def finish(
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
    scope: str,
    pending: Pending,
    code: str,
) -> Identity:
    """Exchange the code (with the PKCE verifier) and check the ID token: signature by a
    key the provider publishes, issuer, audience, expiry and our nonce. The email must be
    one the provider says it verified."""
    meta = metadata(issuer)
    try:
        with _client(client_id, client_secret, redirect_uri, scope) as client:
            token = client.fetch_token(
                meta["token_endpoint"], code=code, code_verifier=pending.verifier
            )
    except Exception as e:  # authlib raises its own OAuthError, or httpx errors
        # The error's class and text (an OAuth error code and description, or a transport
        # error) name no secret: the code and the verifier are not in them.
        log.warning("oidc.code_refused", extra={"error": f"{type(e).__name__}: {e}"[:300]})
        raise SignInRefused("the identity provider refused the sign-in code") from e
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SignInRefused("the identity provider sent no ID token")
    try:
        keys = KeySet.import_key_set(_get_json(meta["jwks_uri"]))  # type: ignore[arg-type]
        decoded = jwt.decode(id_token, keys, algorithms=_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": meta.get("issuer", issuer)},
            aud={"essential": True, "value": client_id},
            nonce={"essential": True, "value": pending.nonce},
            exp={"essential": True},
            sub={"essential": True},
            leeway=60,
        ).validate(decoded.claims)
    except (JoseError, ValueError, KeyError) as e:
        raise SignInRefused("the identity provider's ID token did not verify") from e
    claims = dict(decoded.claims)
    if "email" not in claims and meta.get("userinfo_endpoint"):
        info = _userinfo(meta["userinfo_endpoint"], token.get("access_token"))
        if info.get("sub") == claims["sub"]:  # OIDC Core 5.3.2: else the answer is not theirs
            claims.update(
                {k: v for k, v in info.items() if k in ("email", "email_verified", "name")}
            )
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        raise SignInRefused("the identity provider did not vouch for an email address")
    name = claims.get("name")
    return Identity(str(claims["sub"]), email, name if isinstance(name, str) else "")


def _userinfo(url: str, access_token: object) -> dict[str, Any]:
    if not isinstance(access_token, str):
        return {}
    try:
        response = httpx.get(
            url, headers={"Authorization": f"Bearer {access_token}"}, timeout=_TIMEOUT
        )
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
