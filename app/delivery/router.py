"""``GET|HEAD /v1/files/{namespace}/{name}/{version}/{path}``: where every byte leaves.

The route is ``async``: the token is verified on the event loop (CPU only, with key objects
built once), the database work is done in batches with the downloads arriving at the same
time (:mod:`app.delivery.group_commit`), and the answer is a 302 to a presigned URL (S3,
``redirect`` mode) or the bytes streamed by the server (``proxy`` mode, and always for the
filesystem store).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from app.catalogue.names import check_file_path, routed_file_path
from app.context import get_context
from app.delivery import service
from app.delivery.service import Authorized, FileAddress, Mode, delivery_mode
from app.delivery.streaming import file_response
from app.errors import BadRequest, TokenInvalid, problems
from app.lru import LRU
from app.parts import Parts, parts_of
from app.settings import Settings
from app.tokens import codec
from app.tokens.claims import DOWNLOAD_AUDIENCE, DownloadClaims
from app.tokens.keys import KeySet

router = APIRouter(tags=["delivery"])


def download_expectation(settings: Settings) -> codec.Expectation:
    return codec.Expectation(
        typ=codec.DOWNLOAD_TYP,
        audience=DOWNLOAD_AUDIENCE,
        issuer=settings.issuer,
        max_lifetime=settings.token_max_ttl,
        leeway=settings.token_leeway_seconds,
    )


def token_from(request: Request) -> str | None:
    """The download token, from ``?token=`` or ``Authorization: Bearer`` (not both)."""
    values = request.query_params.getlist("token")
    if len(values) > 1:
        raise BadRequest("give the token once", code="ambiguous_token")
    query = values[0] if values else None
    header = request.headers.get("authorization")
    bearer = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BadRequest(
                "Authorization header must be 'Bearer <token>'", code="malformed_authorization"
            )
        bearer = value.strip()
    if query is not None and bearer is not None and query != bearer:
        raise BadRequest("two different tokens given", code="ambiguous_token")
    token = query if query is not None else bearer
    if token is not None and token.startswith("wg_"):
        raise TokenInvalid(
            "an API key does not open /v1/files: exchange it for a download token at "
            "POST /v1/tokens",
            code="token_wrong_type",
        )
    return token


# The claims object of a token is a pure function of its (verified) payload, so it is kept
# per token alongside the signature cache in app.tokens.codec.
_claims: LRU[str, DownloadClaims] = LRU(max_entries=2048)


def verified_claims(
    token: str, *, keys: KeySet, settings: Settings, now: datetime
) -> DownloadClaims:
    payload = codec.verify(token, keys=keys, expect=download_expectation(settings), now=now)
    claims = _claims.get(token)
    if claims is None:
        claims = DownloadClaims.from_payload(payload)
        _claims.put(token, claims)
    return claims


def answer(
    request: Request,
    parts: Parts,
    allowed: Authorized,
    *,
    address: FileAddress,
    mode: Mode,
    settings: Settings,
    now: datetime,
) -> Response:
    store = parts.store
    sends = request.method == "GET" and allowed.plan.status in (200, 206)
    if sends and mode == "redirect":
        url = parts.presign_cache.url(
            store,
            sha256=allowed.sha256,
            filename=address.path.rsplit("/", 1)[-1],
            now=now,
            cap_seconds=settings.presign_max_seconds,
            not_after=None
            if allowed.token_expires is None
            else datetime.fromtimestamp(allowed.token_expires, UTC),
        )
        if url is not None:
            return Response(
                status_code=302,
                headers={
                    "Location": url,
                    # The Location is a bearer credential until it expires.
                    "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer",
                    "X-Content-SHA256": allowed.sha256,
                },
            )
    response, _ = file_response(
        request.method,
        request.headers,
        store,
        sha256=allowed.sha256,
        size=allowed.size,
        filename=address.path,
    )
    return response


FILES_PATH = "/v1/files/{namespace}/{name}/{version}/{path:path}"
FILES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file (proxy mode, filesystem store)"},
    206: {"description": "part of the file (Range)"},
    302: {"description": "redirect to a presigned URL (redirect mode)"},
    304: {"description": "not modified (If-None-Match)"},
    **problems(400, 401, 403, 404, 416, 422, 429),
}


# The route takes only the request and reads its path parameters itself: FastAPI's parameter
# solving cost three times a bare route's CPU, per download. The parameters are documented
# here instead, as FastAPI would have.
FILES_PARAMETERS: dict[str, Any] = {
    "parameters": [
        *(
            {"name": n, "in": "path", "required": True, "schema": {"type": "string", "title": t}}
            for n, t in (
                ("namespace", "Namespace"),
                ("name", "Name"),
                ("version", "Version"),
                ("path", "Path"),
            )
        ),
        {
            "name": "token",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "title": "Token"},
            "description": "download token (or send it as Authorization: Bearer)",
        },
    ]
}


# Two decorators rather than api_route(methods=[GET, HEAD]): FastAPI gives a multi-method
# route a single operation id, which makes the OpenAPI document invalid (duplicate ids).
@router.get(
    FILES_PATH,
    response_class=Response,
    responses=FILES_RESPONSES,
    operation_id="download_file_get",
    openapi_extra=FILES_PARAMETERS,
)
@router.head(
    FILES_PATH,
    response_class=Response,
    responses=FILES_RESPONSES,
    operation_id="download_file_head",
    openapi_extra=FILES_PARAMETERS,
)
async def download(request: Request) -> Response:
    """A file, for a download token (``?token=`` or ``Authorization: Bearer``) covering it,
    or for anyone when its component is open."""
    # The hot path reads the app's parts directly instead of through four dependencies:
    # FastAPI's dependency solving was a tenth of a redemption's CPU on the event loop.
    params = request.path_params
    namespace, name, version = params["namespace"], params["name"], params["version"]
    path = params["path"]
    parts = parts_of(request.app)
    settings = parts.settings
    now = parts.clock.now()
    ctx = get_context(request)
    address = FileAddress(
        namespace, name, version, check_file_path(routed_file_path(request.scope["path"], path))
    )
    token = token_from(request)
    batches = parts.redeemer
    claims = None
    if token is not None:
        try:
            claims = verified_claims(token, keys=parts.keys, settings=settings, now=now)
        except TokenInvalid as err:
            # Recorded with the next batch; the answer is the refusal either way.
            await batches.submit(service.RefusedToken(err, address, request.method, now, ctx))
            raise
    mode = delivery_mode(settings, parts.store)
    allowed = await batches.submit(
        service.Redemption(claims, address, request.method, request.headers, mode, now, ctx)
    )
    return answer(request, parts, allowed, address=address, mode=mode, settings=settings, now=now)
