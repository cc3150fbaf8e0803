"""The claims our two kinds of token carry, as frozen dataclasses read strictly from JSON.

:mod:`app.tokens.codec` has already checked the signature and the registered claims; these
classes check the rest of the payload (exact member set, exact types) and, for download
tokens, whether the token covers a requested file (:meth:`DownloadClaims.verify`, which
returns a :class:`Refusal` instead of raising, like Warehouse's caveats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from app.errors import TokenInvalid
from app.policy.principals import parse_subject
from app.policy.tiers import Tier
from app.tokens.codec import REGISTERED

DOWNLOAD_AUDIENCE = "weightgate-download"
API_AUDIENCE = "weightgate-api"
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_SCOPE_KEYS = frozenset({"model", "version", "revision", "components", "paths"})
MAX_SCOPE_ITEMS = 256


def _bad(detail: str) -> TokenInvalid:
    return TokenInvalid(detail, code="token_bad_claim")


def _exact_members(payload: dict[str, Any], expected: frozenset[str], what: str) -> None:
    missing = expected - set(payload)
    if missing:
        raise TokenInvalid(f"{what} lacks {sorted(missing)[0]}", code="token_missing_claim")
    if set(payload) - expected:
        raise _bad(f"{what} has members we never issue")


def _str_list(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_SCOPE_ITEMS:
        raise _bad(f"scope.{name} must be a non-empty list")
    if not all(isinstance(v, str) and v for v in value):
        raise _bad(f"scope.{name} must hold strings")
    return tuple(value)


@dataclass(frozen=True)
class Scope:
    """A release, pinned by revision, and the components (optionally only some paths)."""

    model: str
    version: str
    revision: str
    components: tuple[str, ...]
    paths: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, value: Any) -> Scope:
        if not isinstance(value, dict):
            raise _bad("scope must be an object")
        _exact_members(value, _SCOPE_KEYS, "scope")
        for name in ("model", "version", "revision"):
            if not isinstance(value[name], str) or not value[name]:
                raise _bad(f"scope.{name} must be a string")
        if not _HEX40.match(value["revision"]):
            raise _bad("scope.revision must be a release revision")
        paths = value["paths"]
        return cls(
            model=value["model"],
            version=value["version"],
            revision=value["revision"],
            components=_str_list(value["components"], "components"),
            paths=None if paths is None else _str_list(paths, "paths"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "revision": self.revision,
            "components": list(self.components),
            "paths": None if self.paths is None else list(self.paths),
        }


@dataclass(frozen=True)
class FileRequest:
    """The file a redemption asks for, as far as it is known at the point of checking."""

    model: str
    version: str
    path: str
    revision: str | None = None
    component: str | None = None


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str

    def error(self) -> TokenInvalid:
        return TokenInvalid(self.detail, code=self.code)


@dataclass(frozen=True)
class DownloadClaims:
    iss: str
    sub: str
    aud: str
    iat: int
    nbf: int
    exp: int
    jti: str
    tier: Tier
    scope: Scope

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> DownloadClaims:
        _exact_members(payload, frozenset({*REGISTERED, "tier", "scope"}), "token")
        if parse_subject(payload["sub"]) is None:
            raise _bad("claim sub must name a user or a partner")
        tier = payload["tier"]
        if not isinstance(tier, str) or tier not in Tier._value2member_map_:
            raise _bad("claim tier must be a tier")
        return cls(
            iss=payload["iss"],
            sub=payload["sub"],
            aud=payload["aud"],
            iat=payload["iat"],
            nbf=payload["nbf"],
            exp=payload["exp"],
            jti=payload["jti"],
            tier=Tier(tier),
            scope=Scope.from_json(payload["scope"]),
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "iss": self.iss,
            "sub": self.sub,
            "aud": self.aud,
            "iat": self.iat,
            "nbf": self.nbf,
            "exp": self.exp,
            "jti": self.jti,
            "tier": self.tier.value,
            "scope": self.scope.to_json(),
        }

    @property
    def subject(self) -> tuple[Literal["user", "partner"], int]:
        parsed = parse_subject(self.sub)
        assert parsed is not None  # checked in from_payload
        return parsed

    def verify(self, now: datetime, request: FileRequest) -> Refusal | None:
        """``None`` if this token covers ``request`` at ``now``, else why not. Parts of the
        request not known yet (``revision``, ``component``) are not checked."""
        if now.timestamp() >= self.exp:
            return Refusal("token_expired", "token has expired")
        s = self.scope
        if request.model != s.model or request.version != s.version:
            return Refusal("token_wrong_release", "token is for another model or release")
        if request.revision is not None and request.revision != s.revision:
            return Refusal("token_wrong_release", "token is for another revision of the release")
        if s.paths is not None and request.path not in s.paths:
            return Refusal("token_wrong_file", "token does not cover this file")
        if request.component is not None and request.component not in s.components:
            return Refusal("token_wrong_file", "token does not cover this file")
        return None


@dataclass(frozen=True)
class PartnerAccessClaims:
    iss: str
    sub: str
    aud: str
    iat: int
    nbf: int
    exp: int
    jti: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PartnerAccessClaims:
        _exact_members(payload, frozenset(REGISTERED), "token")
        parsed = parse_subject(payload["sub"])
        if parsed is None or parsed[0] != "partner":
            raise _bad("claim sub must name a partner")
        return cls(**{k: payload[k] for k in REGISTERED})

    def to_payload(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in REGISTERED}

    @property
    def partner_id(self) -> int:
        parsed = parse_subject(self.sub)
        assert parsed is not None
        return parsed[1]
