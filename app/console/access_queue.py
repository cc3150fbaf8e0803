"""The admin's access queue: pending requests with their answers and the license version
they accepted, filtered by model, age, answer text and email domain; many selected and
approved or denied at once (the API's bulk decision: one audit event per request)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.access import requests as requests_service
from app.access.schemas import MAX_BULK, BulkDecision
from app.catalogue.names import split_model_id
from app.catalogue.router import admin_model
from app.console.schedule_actions import parse
from app.console.security import PREFIX
from app.console.session import AdminSession, CheckedForm, form_list, principal_of
from app.console.templating import render
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError, Unprocessable
from app.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZES = (50, 100, 500)


def _filters(
    model: Annotated[str, Query(max_length=193)] = "",
    older_than_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    answer: Annotated[str, Query(max_length=200)] = "",
    email_domain: Annotated[str, Query(max_length=253, pattern=r"^[A-Za-z0-9.-]*$")] = "",
    limit: Annotated[int, Query()] = 100,
) -> dict[str, Any]:
    if limit not in PAGE_SIZES:
        raise Unprocessable(f"limit must be one of {', '.join(map(str, PAGE_SIZES))}")
    return {
        "model": model.strip(),
        "older_than_days": older_than_days,
        "answer": answer.strip(),
        "email_domain": email_domain.strip(),
        "limit": limit,
    }


Filters = Annotated[dict[str, Any], Depends(_filters)]


@router.get("/requests")
def queue(
    request: Request,
    admin: AdminSession,
    session: SessionDep,
    clock: ClockDep,
    filters: Filters,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    done: Annotated[str | None, Query(pattern="^(approved|denied)$")] = None,
    n: Annotated[int, Query(ge=0, le=MAX_BULK)] = 0,
    skipped: Annotated[int, Query(ge=0, le=MAX_BULK)] = 0,
) -> Response:
    now = clock.now()
    model_id = None
    if filters["model"]:
        model_id = admin_model(session, *split_model_id(filters["model"])).id
    days = filters["older_than_days"]
    rows = requests_service.queue_page(
        session,
        after=decode_cursor(cursor) if cursor else None,
        limit=filters["limit"],
        status="pending",
        model_id=model_id,
        created_before=now - timedelta(days=days) if days else None,
        answer=filters["answer"] or None,
        email_domain=filters["email_domain"] or None,
    )
    items = [{"out": out, "current_license": current} for out, current in rows]
    query = {k: v for k, v in filters.items() if v not in ("", None)}
    return render(
        request,
        "requests.html",
        {
            "now": now,
            "items": items,
            "filters": filters,
            "query": query,
            "page_sizes": PAGE_SIZES,
            "next_cursor": encode_cursor(rows[-1][0].id) if len(rows) == filters["limit"] else None,
            "done": done,
            "n": n,
            "skipped": skipped,
        },
    )


async def _ids(request: Request) -> list[str]:
    return await form_list(request, "ids")


@router.post("/requests/decide")
def decide(
    request: Request,
    admin: AdminSession,
    form: CheckedForm,
    ids: Annotated[list[str], Depends(_ids)],
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    back = form.get("back", "")
    back = back if back.startswith("?") and "\n" not in back else ""
    try:
        body: BulkDecision = parse(
            BulkDecision,
            {
                "action": form.get("action"),
                "ids": [int(i) for i in ids if i.isdigit()] if ids else [],
                "reason": form.get("reason") or None,
            },
        )
    except AppError as refused:
        problem = refused if ids else Unprocessable("select at least one request")
        return render(
            request,
            "error.html",
            {"title": "Check the form", "detail": problem.detail, "status": problem.status},
            status=problem.status,
        )
    result = requests_service.decide_many(
        session,
        ids=body.ids,
        approve=body.action == "approve",
        reason=body.reason,
        actor=principal_of(admin),
        now=clock.now(),
        ctx=ctx,
    )
    done = "approved" if body.action == "approve" else "denied"
    separator = "&" if back else "?"
    return RedirectResponse(
        f"{PREFIX}/requests{back}{separator}done={done}&n={len(result.done)}"
        f"&skipped={len(result.skipped)}",
        status_code=303,
    )
