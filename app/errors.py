"""The one error hierarchy of the service, rendered as RFC 9457 ``application/problem+json``.

Services raise these; a single handler renders them. Every error has a stable ``code`` that
clients switch on. ``detail`` is for humans and must never contain secrets (tokens, keys,
presigned URLs, SQL).

    AppError
    ├── BadRequest (400)
    ├── Unauthorized (401)
    │   └── TokenInvalid (401, code=token_<reason>)
    ├── Forbidden (403)
    │   ├── EmbargoActive (403, until=…)
    │   └── GrantRequired (403)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── PreconditionFailed (412)
    ├── PayloadTooLarge (413)
    ├── Unprocessable (422)
    ├── QuotaExceeded (429, retry_after=…)
    └── ServiceUnavailable (503)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": f"https://weightgate.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            **self.extra,
        }


class BadRequest(AppError):
    status = 400
    default_code = "bad_request"
    title = "Bad request"


class Unauthorized(AppError):
    status = 401
    default_code = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="weightgate"'})
        super().__init__(detail, **kw)


class TokenInvalid(Unauthorized):
    default_code = "token_invalid"
    title = "Token rejected"


class Forbidden(AppError):
    status = 403
    default_code = "forbidden"
    title = "Forbidden"


class EmbargoActive(Forbidden):
    default_code = "embargoed"
    title = "Embargoed"

    def __init__(self, detail: str, *, until: datetime | None, **kw: Any) -> None:
        super().__init__(detail, until=until.isoformat() if until else None, **kw)


class GrantRequired(Forbidden):
    default_code = "access_grant_required"
    title = "Access grant required"


class NotFound(AppError):
    status = 404
    default_code = "not_found"
    title = "Not found"


class MethodNotAllowed(AppError):
    status = 405
    default_code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(AppError):
    status = 409
    default_code = "conflict"
    title = "Conflict"


class PreconditionFailed(AppError):
    """``If-Match`` named a version that is no longer current: someone else changed it."""

    status = 412
    default_code = "precondition_failed"
    title = "Changed meanwhile"


class PayloadTooLarge(AppError):
    status = 413
    default_code = "payload_too_large"
    title = "Payload too large"


class Unprocessable(AppError):
    status = 422
    default_code = "validation_error"
    title = "Unprocessable request"


class QuotaExceeded(AppError):
    status = 429
    default_code = "quota_exceeded"
    title = "Quota exceeded"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        retry_after = max(1, int(retry_after))
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(detail, retry_after=retry_after, **kw)


class ServiceUnavailable(AppError):
    status = 503
    default_code = "unavailable"
    title = "Service unavailable"


def problem_response(err: AppError) -> JSONResponse:
    return JSONResponse(
        err.body(), status_code=err.status, headers=err.headers, media_type=PROBLEM_JSON
    )


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # pydantic puts the offending input in "input"/"ctx"; inputs can be secrets or huge
    # bodies, so only the location and message are echoed back.
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]


async def _validation_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_validation_errors(exc)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(x for x in first["loc"] if x not in ("body",)) or "request"
    err = Unprocessable(f"{where}: {first['msg']}", errors=errors)
    return problem_response(err)


_HTTP_CODES = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
}


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers on this request's path, for ``Allow``.
    Starlette's 405 names only the methods of the first route that matched the path, and a
    path often has several routes (a GET and a POST declared apart). Each method is tried
    against the app's routes as the router would match it."""
    allowed = {"OPTIONS"}
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    return ", ".join(sorted(allowed))


async def _http_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allow = allowed_methods(request)
        if request.method == "OPTIONS":
            # What may be done here (RFC 9110 §9.3.7); no CORS: the API is not for browsers.
            return Response(status_code=204, headers={"Allow": allow})
        detail = f"{request.method} is not allowed here; allowed: {allow}"
        return problem_response(MethodNotAllowed(detail, headers={"Allow": allow}))
    cls = _HTTP_CODES.get(exc.status_code)
    if cls is None:
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "code": f"http_{exc.status_code}",
            "detail": str(exc.detail),
        }
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_JSON)
    detail = "no such route" if exc.status_code == 404 else str(exc.detail)
    code = "route_not_found" if exc.status_code == 404 else None
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a body it cannot decode (bytes that are not UTF-8).
        detail, code = "the request body is not valid JSON (UTF-8)", "malformed_body"
    return problem_response(cls(detail, code=code, headers=dict(exc.headers or {})))


# Turns a problem answer into another form for the requests it claims (the console's HTML
# pages), or returns None to leave it as problem+json.
ProblemRenderer = Callable[[Request, Response], Response | None]


def register_error_handlers(
    app: FastAPI,
    *,
    observe: Callable[[AppError], None] | None = None,
    render: ProblemRenderer | None = None,
) -> None:
    """Render every error as problem+json; ``observe`` sees each AppError first (metrics);
    ``render`` may re-render the problem for the paths it serves (the console's HTML)."""

    def rendered(request: Request, response: Response) -> Response:
        if render is None or response.status_code < 400:
            return response
        return render(request, response) or response

    async def app_error_handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        if observe is not None:
            observe(exc)
        return rendered(request, problem_response(exc))

    async def validation_handler(request: Request, exc: Exception) -> Response:
        return rendered(request, await _validation_handler(request, exc))

    async def http_handler(request: Request, exc: Exception) -> Response:
        return rendered(request, await _http_handler(request, exc))

    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)


# OpenAPI: routes declare these so the schema says which problems they return.
PROBLEM_SCHEMA: dict[str, Any] = {
    "content": {
        PROBLEM_JSON: {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                },
            }
        }
    }
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"description": "problem", **PROBLEM_SCHEMA} for s in statuses}
