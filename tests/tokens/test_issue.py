"""POST /v1/tokens: the access rule at issue time, scope, lifetime, mass assignment, quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, IssuedToken
from app.tokens import codec
from tests.fixtures.parts import change_settings
from tests.tokens.forge import header_of, payload_of
from tests.tokens.world import MODEL, World


def audit_actions(db: Session) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    return [(e.action, e.outcome, e.data) for e in rows]


def test_researcher_with_grant_gets_a_token_for_what_is_open_to_research(
    world: World, db: Session
) -> None:
    out = world.token(world.researcher, components=["config"], version="v1")
    assert set(out) == {
        "token",
        "token_type",
        "jti",
        "issued_at",
        "expires_at",
        "tier",
        "max_uses",
        "scope",
        "files",
    }
    assert out["tier"] == "research"
    assert out["token_type"] == "Bearer"
    assert out["scope"] == {
        "model": MODEL,
        "version": "v1",
        "revision": world.release.revision,
        "components": ["config"],
        "paths": None,
    }
    assert out["files"] == [
        {
            "path": "config.json",
            "size": len(world.files["config.json"]),
            "sha256": __import__("hashlib").sha256(world.files["config.json"]).hexdigest(),
            "component": "config",
            "url": "http://127.0.0.1:8000/v1/files/acme/atlas-7b/v1/config.json",
        },
        {
            **out["files"][1],  # type: ignore[index]
            "path": "signatures/config.sig",
            "component": "config",
            "url": "http://127.0.0.1:8000/v1/files/acme/atlas-7b/v1/signatures/config.sig",
        },
    ]
    token = str(out["token"])
    claims = payload_of(token)
    t0 = int(world.clock.now().timestamp())
    assert claims == {
        "iss": "weightgate",
        "sub": f"user:{world.researcher_id}",
        "aud": "weightgate-download",
        "iat": t0,
        "nbf": t0,
        "exp": t0 + 900,
        "jti": out["jti"],
        "tier": "research",
        "scope": out["scope"],
    }
    assert header_of(token)["typ"] == codec.DOWNLOAD_TYP
    assert out["expires_at"] == "2026-06-01T12:15:00Z"
    row = db.get(IssuedToken, str(out["jti"]))
    assert row is not None
    assert (row.kind, row.tier, row.uses, row.max_uses) == ("download", "research", 0, None)
    assert row.subject == f"user:{world.researcher_id}"
    action, outcome, data = audit_actions(db)[-1]
    assert (action, outcome) == ("token.issued", "ok")
    assert data["jti"] == out["jti"]
    assert token not in str(audit_actions(db))


def test_default_scope_is_every_component_open_to_the_caller_now(world: World) -> None:
    out = world.token(world.researcher)
    assert out["scope"]["components"] == ["config", "tokenizer"]  # type: ignore[index]
    paths = sorted(f["path"] for f in out["files"])  # type: ignore[attr-defined]
    assert paths == [
        "config.json",
        "signatures/config.sig",
        "signatures/tokenizer.sig",
        "tokenizer.json",
    ]
    partner = world.token(world.partner())
    assert partner["tier"] == "partner"
    assert partner["scope"]["components"] == ["config", "tokenizer", "weights"]  # type: ignore[index]
    admin = world.token(world.admin)
    assert admin["tier"] == "internal"
    assert admin["scope"]["components"] == ["config", "safety", "tokenizer", "weights"]  # type: ignore[index]


def test_embargoed_component_says_until_when(world: World, db: Session) -> None:
    out = world.token(world.researcher, 403, components=["weights"])
    assert out["code"] == "embargoed"
    assert out["until"] == "2026-06-11T12:00:00+00:00"
    assert "it opens to you at 2026-06-11T12:00:00+00:00" in str(out["detail"])
    action, outcome, data = audit_actions(db)[-1]
    assert (action, outcome, data["code"]) == ("token.denied", "denied", "embargoed")
    assert db.scalars(select(IssuedToken)).all() == []


def test_research_component_without_grant_needs_an_access_grant(world: World) -> None:
    out = world.token(world.stranger, 403, components=["config"])
    assert out["code"] == "access_grant_required"
    # Open components need no grant.
    assert world.token(world.stranger, components=["tokenizer"])["tier"] == "open"


def test_internal_components_and_unknown_names_are_the_same_404(world: World) -> None:
    assert (
        world.token(world.researcher, 404, components=["safety"])["code"] == "component_not_found"
    )
    assert world.token(world.researcher, 404, components=["nope"])["code"] == "component_not_found"
    assert world.token(world.researcher, 404, paths=["classifier.bin"])["code"] == "file_not_found"
    assert world.token(world.admin, components=["safety"])["tier"] == "internal"
    body = world.token(world.researcher, 404, model="acme/nope")
    assert body["code"] == "model_not_found"
    assert world.token(world.researcher, 404, version="v9")["code"] == "release_not_found"
    assert world.token(world.researcher, 422, model="no-slash")["code"] == "invalid_name"


def test_paths_narrow_the_scope(world: World) -> None:
    out = world.token(world.partner(), paths=["model.safetensors"])
    assert out["scope"]["paths"] == ["model.safetensors"]  # type: ignore[index]
    assert out["scope"]["components"] == ["weights"]  # type: ignore[index]
    assert [f["path"] for f in out["files"]] == ["model.safetensors"]  # type: ignore[attr-defined]
    bad = world.token(world.partner(), 422, paths=["model.safetensors"], components=["config"])
    assert bad["code"] == "paths_outside_components"


def test_lifetime_default_shorter_on_request_never_above_the_maximum(world: World) -> None:
    t0 = world.clock.now()
    short = world.token(world.researcher, ttl_seconds=60)
    assert short["expires_at"] == (t0 + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    longest = world.token(world.researcher, ttl_seconds=24 * 3600)
    assert payload_of(str(longest["token"]))["exp"] == int(t0.timestamp()) + 24 * 3600
    over = world.token(world.researcher, 422, ttl_seconds=24 * 3600 + 1)
    assert over["code"] == "ttl_too_long"
    assert over["max_ttl_seconds"] == 24 * 3600
    assert world.token(world.researcher, 422, ttl_seconds=0)["code"] == "validation_error"


@pytest.mark.parametrize(
    "extra",
    [
        {"tier": "internal"},
        {"exp": 4102444800},
        {"scope": {"components": ["safety"]}},
        {"storage_key": "objects/sha256/00"},
        {"sha256": "0" * 64},
        {"sub": "user:1"},
        {"kid": "x"},
        {"jti": "chosen"},
    ],
)
def test_mass_assignment_is_refused(world: World, db: Session, extra: dict[str, Any]) -> None:
    out = world.token(world.researcher, 422, components=["config"], **extra)
    assert out["code"] == "validation_error"
    (field,) = extra
    errors = out["errors"]
    assert isinstance(errors, list)
    assert any(e["loc"][-1] == field and e["type"] == "extra_forbidden" for e in errors)
    assert db.scalars(select(IssuedToken)).all() == []


def test_strict_types_in_the_body(world: World) -> None:
    assert world.token(world.researcher, 422, ttl_seconds="60")["code"] == "validation_error"
    assert world.token(world.researcher, 422, components="config")["code"] == "validation_error"
    assert world.token(world.researcher, 422, max_uses=0)["code"] == "validation_error"


def test_anonymous_callers_get_no_tokens(world: World) -> None:
    resp = world.client.post("/v1/tokens", json={"model": MODEL})
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"


def test_tokens_per_minute_quota(world: World, db: Session) -> None:
    change_settings(world.client.app, quota_tokens_per_minute=2)
    world.clock.set(datetime(2026, 6, 1, 12, 0, 40, tzinfo=UTC))
    world.token(world.researcher)
    world.token(world.researcher)
    resp = world.client.post("/v1/tokens", json={"model": MODEL}, headers=world.researcher)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "20"
    body = resp.json()
    assert body["code"] == "quota_tokens"
    assert body["retry_after"] == 20
    # Another principal has its own allowance; the next minute starts afresh.
    world.token(world.stranger, components=["tokenizer"])
    world.clock.advance(20)
    world.token(world.researcher)
    assert len(db.scalars(select(IssuedToken)).all()) == 4
    denied = [a for a in audit_actions(db) if a[1] == "denied"]
    assert [d[2]["code"] for d in denied] == ["quota_tokens"]


def test_version_may_be_omitted_for_the_latest_release(world: World) -> None:
    out = world.token(world.researcher, components=["config"])
    assert out["scope"]["version"] == "v1"  # type: ignore[index]
