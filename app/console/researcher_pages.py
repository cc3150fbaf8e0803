"""The researcher's pages: the catalogue they may see, a model (license, releases, each
component's state for them, files), asking for access, and "My access".

Every read and write goes through the API's services with the signed-in user as the
principal, so the visibility rule, the request form's validation and the audit trail are the
API's own. A model the user may not know about answers the console's ordinary 404, exactly
like a page that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.access import grants as grants_service
from app.access import requests as requests_service
from app.access.schemas import AccessRequestCreate, AccessRequestOut
from app.catalogue import contents, listing
from app.catalogue.router import model_out, release_out
from app.catalogue.schemas import ModelOut
from app.catalogue.visibility import announced_release_ids
from app.console.security import PREFIX
from app.console.session import CheckedForm, Signed, page_not_found, principal_of
from app.console.templating import render
from app.console.visible import find_manifest, seen_model
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError
from app.models import Model
from app.pagination import decode_cursor, encode_cursor
from app.policy.principals import Principal
from app.policy.tiers import Tier

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
Cursor = Annotated[str | None, Query(max_length=64)]
Search = Annotated[str | None, Query(max_length=200)]
Version = Annotated[str | None, Query(max_length=64)]


def validation_message(error: ValidationError) -> str:
    """A form's validation errors in words: "field: what is wrong", as the API's 422 says."""
    parts = []
    for err in error.errors():
        where = ".".join(str(x) for x in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


def model_href(model_id: str) -> str:
    return f"{PREFIX}/catalogue/{model_id}"


@router.get("/catalogue")
def catalogue(
    request: Request,
    found: Signed,
    session: SessionDep,
    clock: ClockDep,
    q: Search = None,
    cursor: Cursor = None,
) -> Response:
    now = clock.now()
    items, after = listing.visible_models_page(
        session,
        principal_of(found),
        after=decode_cursor(cursor) if cursor else None,
        limit=PAGE,
        now=now,
        search=(q or "").strip() or None,
    )
    open_now = listing.openness(session, items, now=now)
    rows = [
        {"model": model_out(x.model, x.latest, x.clearance), "open": open_now.get(x.model.id)}
        for x in items
    ]
    return render(
        request,
        "catalogue.html",
        {
            "rows": rows,
            "q": q or "",
            "next_cursor": encode_cursor(after) if after is not None else None,
        },
    )


def my_requests(
    session: Session, user_id: int, *, model_id: int | None = None, limit: int = 50
) -> list[AccessRequestOut]:
    """The user's latest requests (for one model, or all), newest first."""
    return requests_service.requests_out(
        session, after=None, limit=limit, user_id=user_id, model_id=model_id, newest_first=True
    )


def _release_versions(
    session: Session, principal: Principal, model: Model, now: datetime
) -> list[Any]:
    rels = contents.releases_page(
        session, model.id, after=None, limit=PAGE, published_only=not principal.is_admin
    )
    if not principal.is_admin:
        announced = announced_release_ids(session, rels, now=now)
        rels = [r for r in rels if r.id in announced]
    return [release_out(model, r, None) for r in rels]


@router.get("/catalogue/{namespace}/{name}")
def model_view(
    request: Request,
    namespace: str,
    name: str,
    found: Signed,
    session: SessionDep,
    clock: ClockDep,
    version: Version = None,
) -> Response:
    now = clock.now()
    principal = principal_of(found)
    model, clearance = seen_model(session, principal, namespace, name, now)
    seen = find_manifest(session, principal, namespace, name, version=version, now=now)
    if seen is None and version:  # an unknown (or unannounced) version: the plain 404
        raise page_not_found()
    requests = my_requests(session, found.user.id, model_id=model.id)
    return render(
        request,
        "model_view.html",
        {
            "model": model_out(model, None, clearance),
            "clearance": clearance.value,
            "releases": _release_versions(session, principal, model, now),
            "manifest": seen,
            "requests": requests,
            "latest_request": requests[0] if requests else None,
            "may_request": clearance == Tier.OPEN
            and not any(r.status == "pending" for r in requests),
        },
    )


def _field_answers(model: ModelOut, form: dict[str, str]) -> dict[str, str | bool]:
    answers: dict[str, str | bool] = {}
    for field in model.request_fields:
        key = f"answer.{field.name}"
        if field.type == "checkbox":
            answers[field.name] = form.get(key) == "yes"
        elif form.get(key, "").strip():
            answers[field.name] = form[key]
    return answers


def _request_page(
    request: Request,
    model: ModelOut,
    *,
    values: dict[str, str | bool] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "request_access.html",
        {"model": model, "values": values or {}, "error": error},
        status=status,
    )


@router.get("/catalogue/{namespace}/{name}/request")
def request_form(
    request: Request,
    namespace: str,
    name: str,
    found: Signed,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    model, clearance = seen_model(session, principal_of(found), namespace, name, clock.now())
    if clearance != Tier.OPEN:
        return RedirectResponse(model_href(model.repo_id), status_code=303)
    return _request_page(request, model_out(model, None, clearance))


@router.post("/catalogue/{namespace}/{name}/request")
def request_access(
    request: Request,
    namespace: str,
    name: str,
    found: Signed,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """The API's ``POST .../access-requests`` from a form: the same validation (fields,
    license acceptance, the license's SHA-256 as read), the same answers and errors."""
    now = clock.now()
    principal = principal_of(found)
    model, clearance = seen_model(session, principal, namespace, name, now)
    shown = model_out(model, None, clearance)
    answers = _field_answers(shown, form)
    try:
        body = AccessRequestCreate(
            answers=answers,
            accept_license=form.get("accept_license") == "yes",
            license_sha256=form.get("license_sha256") or None,
        )
        requests_service.create_request(
            session,
            principal=principal,
            model=model,
            clearance=clearance,
            body=body,
            now=now,
            ctx=ctx,
        )
    except ValidationError as e:
        return _request_page(
            request, shown, values=answers, error=validation_message(e), status=422
        )
    except AppError as e:
        session.rollback()
        return _request_page(request, shown, values=answers, error=e.detail, status=e.status)
    return RedirectResponse(model_href(model.repo_id) + "#my-request", status_code=303)


@router.get("/access")
def my_access(request: Request, found: Signed, session: SessionDep, clock: ClockDep) -> Response:
    """The user's requests (status, reason) and grants (what each opens, and when)."""
    now = clock.now()
    principal = principal_of(found)
    requests = my_requests(session, found.user.id, limit=200)
    grants = [
        grants_service.my_grant_out(session, principal, g, m, now=now)
        for g, m in grants_service.user_grants_page(session, found.user.id, after=None, limit=200)
    ]
    return render(
        request,
        "my_access.html",
        {"requests": requests, "grants": list(reversed(grants))},
    )
