"""What the Hub's clients may ask and weightgate does not serve, answered so the client can
say so: every other ``/api/…`` call (uploads, commits, search, discussions, …) is a ``501``
with ``X-Error-Code: NotSupported``, and datasets and Spaces are repositories that do not
exist here (``RepoNotFound``). A bare 404 would reach the user as "check your connection"
(``huggingface_hub`` reads an uncoded error on a download as a network failure).

These routes come last: they answer only what no other route matched.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.errors import AppError, NotFound
from app.hfcompat.errors import HubNotSupported, header_safe

router = APIRouter(include_in_schema=False)

_ALL = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_DOCS = "see docs/huggingface.md for what weightgate serves to Hugging Face clients"


def _models_only(kind: str) -> AppError:
    detail = f"weightgate serves models only: there are no {kind} here"
    return NotFound(
        detail,
        code="repo_type_not_supported",
        headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": detail},
    )


@router.api_route("/api/datasets/{rest:path}", methods=_ALL)
@router.api_route("/datasets/{rest:path}", methods=_ALL)
async def datasets(rest: str) -> None:
    raise _models_only("datasets")


@router.api_route("/api/spaces/{rest:path}", methods=_ALL)
@router.api_route("/spaces/{rest:path}", methods=_ALL)
async def spaces(rest: str) -> None:
    raise _models_only("Spaces")


@router.api_route("/api/{rest:path}", methods=_ALL)
async def anything_else(rest: str, request: Request) -> None:
    what = header_safe(f"{request.method} /api/{rest}")[:200]
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        reason = (
            "weightgate is read-only to Hugging Face clients (publish with `weightgate publish`)"
        )
    else:
        reason = "this Hub API is not one weightgate implements"
    raise HubNotSupported(f"{what}: {reason}; {_DOCS}")
