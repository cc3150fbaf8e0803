"""Every attack from the tokens issue, against the real route: 401 with its own code.

Codes are distinct wherever the server can tell the cases apart. Two cannot be told apart by
anyone: a changed payload and a changed signature both mean "this signature does not verify
for these bytes", so both are ``token_bad_signature``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwe
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent
from app.tokens import codec
from app.tokens.keys import SigningKey, new_private_key
from tests.factories.catalogue import publish_release
from tests.fixtures.parts import app_parts
from tests.tokens.forge import change_payload, change_signature, forge, payload_of
from tests.tokens.world import MODEL, World, bearer

URL = "/v1/files/acme/atlas-7b/v1/"


def signing_key(world: World) -> SigningKey:
    keys = app_parts(world.client.app).keys
    return keys.signing_key(world.clock.now())


def good(world: World, **body: Any) -> str:
    return str(world.token(world.researcher, components=["config"], **body)["token"])


def resign(world: World, token: str, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """The token's claims with ``claims`` changed, validly signed with our own key."""
    key = signing_key(world)
    body = {**payload_of(token), **claims}
    head = {"alg": "ES256", "kid": key.kid, "typ": codec.DOWNLOAD_TYP, **(header or {})}
    return forge(head, body, key=key.private)


def alg_none(world: World) -> str:
    return forge({"alg": "none", "typ": codec.DOWNLOAD_TYP}, payload_of(good(world)))


def hs256_with_public_key(world: World) -> str:
    key = signing_key(world)
    pem = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = {"alg": "HS256", "kid": key.kid, "typ": codec.DOWNLOAD_TYP}
    return forge(head, payload_of(good(world)), hmac_secret=pem)


def unknown_kid(world: World) -> str:
    head = {"alg": "ES256", "kid": "attacker-key", "typ": codec.DOWNLOAD_TYP}
    return forge(head, payload_of(good(world)), key=new_private_key())


def expired(world: World) -> str:
    token = good(world, ttl_seconds=60)
    world.clock.advance(60)
    return token


def not_yet_valid(world: World) -> str:
    token = good(world)
    p = payload_of(token)
    return resign(world, token, nbf=p["iat"] + 600)


def wrong_audience(world: World) -> str:
    return resign(world, good(world), aud="weightgate-api")


def wrong_issuer(world: World) -> str:
    return resign(world, good(world), iss="https://evil.example")


def changed_payload(world: World) -> str:
    return change_payload(good(world), tier="internal")


def changed_signature(world: World) -> str:
    return change_signature(good(world))


def file_a_for_file_b(world: World) -> str:
    # Issued for config.json (component "config"), presented for the tokenizer below.
    return str(world.token(world.researcher, paths=["config.json"])["token"])


def v1_token_for_v2(world: World) -> str:
    publish_release(
        world.client,
        world.admin,
        model=MODEL,
        version="v2",
        create=False,
        components={"config": [("research", world.clock.now())]},
        files={"config.json": ("config", b'{"hidden": 8192}')},
    )
    return good(world, version="v1")


def revoked(world: World) -> str:
    out = world.token(world.researcher, components=["config"])
    world.client.delete(f"/v1/tokens/{out['jti']}", headers=world.researcher)
    return str(out["token"])


def after_max_uses(world: World) -> str:
    token = good(world, max_uses=1)
    assert world.client.get(URL + "config.json", params={"token": token}).status_code == 200
    return token


def partner_access_token(world: World) -> str:
    return world.partner_token()


def crit_header(world: World) -> str:
    return resign(world, good(world), header={"crit": ["exp"]})


def exp_as_string(world: World) -> str:
    token = good(world)
    return resign(world, token, exp=str(payload_of(token)["exp"]))


def exp_null(world: World) -> str:
    return resign(world, good(world), exp=None)


def exp_list(world: World) -> str:
    token = good(world)
    return resign(world, token, exp=[payload_of(token)["exp"]])


def twenty_kb(world: World) -> str:
    return resign(world, good(world), padding="x" * 20 * 1024)


def a_jwe(world: World) -> str:
    body = json.dumps(payload_of(good(world)))
    out = jwe.encrypt(body, b"0123456789abcdef", algorithm="dir", encryption="A128GCM")
    return out.decode() if isinstance(out, bytes) else out


ATTACKS: list[tuple[Callable[[World], str], str, str]] = [
    (alg_none, "config.json", "token_unsigned"),
    (hs256_with_public_key, "config.json", "token_algorithm_refused"),
    (unknown_kid, "config.json", "token_unknown_key"),
    (expired, "config.json", "token_expired"),
    (not_yet_valid, "config.json", "token_not_yet_valid"),
    (wrong_audience, "config.json", "token_wrong_audience"),
    (wrong_issuer, "config.json", "token_wrong_issuer"),
    (changed_payload, "config.json", "token_bad_signature"),
    (changed_signature, "config.json", "token_bad_signature"),
    (file_a_for_file_b, "tokenizer.json", "token_wrong_file"),
    (revoked, "config.json", "token_revoked"),
    (after_max_uses, "config.json", "token_uses_exhausted"),
    (partner_access_token, "config.json", "token_wrong_type"),
    (crit_header, "config.json", "token_crit_refused"),
    (exp_as_string, "config.json", "token_bad_claim"),
    (exp_null, "config.json", "token_bad_claim"),
    (exp_list, "config.json", "token_bad_claim"),
    (twenty_kb, "config.json", "token_too_large"),
    (a_jwe, "config.json", "token_encrypted"),
]


@pytest.mark.parametrize(("attack", "path", "code"), ATTACKS, ids=[a[0].__name__ for a in ATTACKS])
def test_attack_is_refused_with_its_code(
    world: World, db: Session, attack: Callable[[World], str], path: str, code: str
) -> None:
    token = attack(world)
    for how in ("query", "bearer"):
        kwargs: dict[str, Any] = (
            {"params": {"token": token}} if how == "query" else {"headers": bearer(token)}
        )
        resp = world.client.get(URL + path, **kwargs)
        assert resp.status_code == 401, (how, resp.text)
        body = resp.json()
        assert resp.headers["content-type"] == "application/problem+json"
        assert body["code"] == code, (how, body)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert token[-40:] not in resp.text
    denied = db.scalars(select(AuditEvent).where(AuditEvent.action == "download.denied")).all()
    assert [e.data["code"] for e in denied][-2:] == [code, code]


def test_v1_token_used_for_v2(world: World) -> None:
    token = v1_token_for_v2(world)
    resp = world.client.get("/v1/files/acme/atlas-7b/v2/config.json", params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (401, "token_wrong_release")
    # Same file name, same model: only the release differs. v1 itself still works.
    assert world.client.get(URL + "config.json", params={"token": token}).status_code == 200


def test_token_for_another_component_of_the_same_release(world: World) -> None:
    token = str(world.token(world.researcher, components=["config"])["token"])
    resp = world.client.get(URL + "tokenizer.json", params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (401, "token_wrong_file")


def test_download_token_used_as_partner_access_token(world: World) -> None:
    token = good(world)
    resp = world.client.post("/v1/tokens", json={"model": MODEL}, headers=bearer(token))
    assert (resp.status_code, resp.json()["code"]) == (401, "token_wrong_type")


def test_codes_are_distinct_except_where_indistinguishable() -> None:
    codes = [code for _, _, code in ATTACKS]
    shared = {c for c in codes if codes.count(c) > 1}
    # bad_signature: payload vs signature change; bad_claim: the three wrong exp types.
    assert shared == {"token_bad_signature", "token_bad_claim"}


def test_unknown_jti_with_a_valid_signature(world: World) -> None:
    token = resign(world, good(world), jti="never-issued")
    resp = world.client.get(URL + "config.json", params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (401, "token_unknown")


def test_forged_subject_with_our_key_is_still_checked_against_the_row(world: World) -> None:
    # Even a token signed with our key (a leaked key, a bug) must match its row.
    token = resign(world, good(world), sub=f"user:{world.stranger_id}")
    resp = world.client.get(URL + "config.json", params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (401, "token_unknown")
