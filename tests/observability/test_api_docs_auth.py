"""/docs has an Authorize button: the OpenAPI document declares the bearer scheme (an API key
or a partner access token) on every operation that reads the caller, and a call made the
way Swagger UI makes it from that scheme is authenticated."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.factories.principals import make_user


def _operation(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return doc["paths"][path][method]  # type: ignore[no-any-return]


def test_the_document_declares_the_bearer_scheme_where_the_caller_is_read(
    client: TestClient,
) -> None:
    doc = client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert "wg_" in scheme["description"]
    for path, method in [
        ("/v1/me", "get"),
        ("/v1/tokens", "post"),
        ("/v1/models", "get"),
        ("/api/models/{namespace}/{name}", "get"),
        ("/{namespace}/{name}/resolve/{rev}/{path}", "get"),
        ("/{namespace}/{name}/resolve/{rev}/{path}", "head"),
    ]:
        op = _operation(doc, path, method)
        assert op["security"] == [{"bearer": []}], (path, method)
        assert "401" in op["responses"], (path, method)
    # Routes that never read a credential do not ask for one.
    assert "security" not in _operation(doc, "/healthz", "get")
    assert "security" not in _operation(doc, "/.well-known/jwks.json", "get")


def test_a_call_made_from_the_authorize_button_is_authenticated(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    _, key = make_user(db, clock, email="docs@example.org")
    doc = client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    # What Swagger UI sends for an http/bearer scheme once a value is entered in Authorize.
    header = {"Authorization": f"{scheme['scheme'].capitalize()} {key}"}
    assert client.get("/v1/me").status_code == 401
    me = client.get("/v1/me", headers=header)
    assert me.status_code == 200
    assert me.json()["email"] == "docs@example.org"
