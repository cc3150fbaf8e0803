"""Values out of range are refused with a 422 (or answer like a missing row), never a 500:
cursors no server issued, ids past any row or written with non-ASCII digits, and times
near the calendar's ends with a zone offset."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.factories.catalogue import check, publish_release
from tests.factories.principals import make_user

HUGE = "9" * 40
SUPERSCRIPT_TWO = "\u00b2"
EDGE_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1850-06-01T00:00:00Z"]


def huge_cursor() -> str:
    return base64.urlsafe_b64encode(HUGE.encode()).decode().rstrip("=")


def paginated_routes(app: FastAPI) -> list[str]:
    out = []
    for path, ops in app.openapi()["paths"].items():
        params = ops.get("get", {}).get("parameters", [])
        if any(p["name"] == "cursor" and p["in"] == "query" for p in params):
            out.append(path.replace("{namespace}", "acme").replace("{name}", "atlas-7b"))
    return out


@pytest.fixture
def released(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> None:
    publish_release(
        client,
        admin_headers,
        components={"weights": [("open", clock.now() - timedelta(days=1))]},
    )


def test_an_oversized_cursor_is_refused_on_every_paginated_route(
    client: TestClient, app: FastAPI, admin_headers: dict[str, str], released: None
) -> None:
    routes = paginated_routes(app)
    assert "/v1/models" in routes
    assert len(routes) >= 10  # every list of the API, the Hub's tree and embargoes included
    for path in routes:
        path = path.replace("{rev}", "v1").replace("{path}", "x")
        for headers in ({}, admin_headers):
            r = client.get(path, params={"cursor": huge_cursor()}, headers=headers)
            assert r.status_code in (401, 403, 404, 422), (path, r.status_code, r.text)
            if headers and r.status_code == 422:
                assert r.json()["code"] == "invalid_cursor", (path, r.text)
    anonymous = client.get("/v1/models", params={"cursor": huge_cursor()})
    assert anonymous.status_code == 422
    assert anonymous.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("ident", [HUGE, SUPERSCRIPT_TWO, "1" + SUPERSCRIPT_TWO, "0"])
def test_ids_no_row_can_have_are_refused_or_not_found(
    client: TestClient, admin_headers: dict[str, str], released: None, ident: str
) -> None:
    grant = client.get(f"/v1/models/acme/atlas-7b/grants/{ident}", headers=admin_headers)
    assert grant.status_code == 404, grant.text
    assert grant.json()["code"] == "user_not_found"
    revoke = client.delete(f"/v1/models/acme/atlas-7b/grants/{ident}", headers=admin_headers)
    assert revoke.status_code == 404, revoke.text
    for kind in ("user", "partner"):
        r = client.post(f"/v1/principals/{kind}:{ident}/revoke-tokens", headers=admin_headers)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_principal"
    urls = [
        f"/v1/access-requests?user={ident}",
        f"/v1/access-requests/{ident}",
        f"/v1/access-requests/{ident}/approve",
    ]
    if ident != "0":  # 0 is the chain's start, a valid anchor
        urls.append(f"/v1/audit/verify?since_id={ident}&since_hash={'0' * 64}")
    for url in urls:
        method = "POST" if url.endswith("approve") else "GET"
        r = client.request(method, url, headers=admin_headers)
        assert r.status_code in (404, 422), (url, r.text)


@pytest.mark.parametrize("at", EDGE_TIMES)
def test_times_near_the_calendars_ends_are_refused(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    admin_headers: dict[str, str],
    released: None,
    at: str,
) -> None:
    _, key = make_user(db, clock)
    researcher = {"Authorization": f"Bearer {key}"}
    refused = [
        client.post("/v1/me/api-keys", json={"expires_at": at}, headers=researcher),
        client.get("/v1/audit", params={"since": at}, headers=admin_headers),
        client.get("/v1/audit", params={"until": at}, headers=admin_headers),
        client.get("/v1/embargoes", params={"since": at}, headers=admin_headers),
        client.get("/v1/embargoes", params={"until": at, "when": "all"}, headers=admin_headers),
        client.put(
            "/v1/models/acme/atlas-7b/releases/v1/components/weights/schedule",
            json={"schedule": [{"tier": "open", "at": at}]},
            headers=admin_headers,
        ),
        client.post(
            "/v1/models/acme/atlas-7b/releases",
            json={"version": "v2"},
            headers=admin_headers,
        ),
        client.post(
            "/v1/models/acme/atlas-7b/releases/v2/components",
            json={"name": "w", "schedule": [{"tier": "open", "at": at}]},
            headers=admin_headers,
        ),
        client.post(
            "/v1/partners",
            json={"name": "P", "models": [{"model": "acme/atlas-7b", "ends_at": at}]},
            headers=admin_headers,
        ),
        client.post(
            "/v1/partners", json={"name": "P", "secret_expires_at": at}, headers=admin_headers
        ),
    ]
    release_created = refused.pop(6)
    check(release_created, 201)
    for r in refused:
        assert r.status_code == 422, (r.request.url, r.text)
        assert "between 1900 and 9000" in r.text, r.text
