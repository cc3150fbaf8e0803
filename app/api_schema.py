"""The OpenAPI document, completed with the refusals every route can answer.

Routes declare their own problems (``responses=problems(...)``, app/errors.py); what the
edge answers on any route is added here, once, so the document stays honest (the fuzzing
pass in tests/fuzz checks every answer against it):

- ``422`` (``validation_error``, ``nul_in_url``): a path or query value the route cannot take
  (FastAPI documents its own ``HTTPValidationError`` JSON instead; every 422 here is
  problem+json);
- ``400`` (``malformed_body``) and ``413`` (``payload_too_large``, app/http_limits.py) on
  every operation that takes a request body;
- ``401`` on every operation that reads the caller's credential (its ``security`` lists the
  ``bearer`` scheme of app/auth/dependencies.py): a credential that is malformed, unknown, revoked
  or expired is refused before the route runs, even where none is needed.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.errors import PROBLEM_SCHEMA

_METHODS = ("get", "head", "post", "put", "patch", "delete")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, **PROBLEM_SCHEMA}


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the edge's refusals documented on every operation (in place)."""
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses["422"] = _problem("a path, query or body value the route cannot take")
            if operation.get("security"):
                responses.setdefault("401", _problem("the credential is malformed or not valid"))
            if "requestBody" in operation:
                responses.setdefault("400", _problem("the body is not valid JSON (UTF-8)"))
                responses.setdefault("413", _problem("the body is larger than the route takes"))
    # FastAPI's HTTPValidationError schemas describe answers this API never gives.
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
