"""The admin's webhooks pages: subscriptions (list, subscribe a URL, delete), a
subscription's recent deliveries with their status and every attempt, and *Redeliver* —
each through the webhooks service exactly as ``/v1/webhooks`` calls it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.console.schedule_actions import parse
from app.console.security import PREFIX
from app.console.session import AdminSession, CheckedForm, form_list, principal_of
from app.console.templating import render
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import AppError
from app.ids import IdPath
from app.pagination import decode_cursor, encode_cursor
from app.webhooks import service
from app.webhooks.outbox import EVENT_TYPES
from app.webhooks.schemas import WebhookCreate

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
DELIVERIES_PAGE = 25
Cursor = Annotated[str | None, Query(max_length=64)]
# What the page says after an action, by code (never free text taken from the URL).
DONE = {
    "deleted": "Deleted: nothing more is sent to it; its deliveries stay listed.",
    "redelivered": "Queued for redelivery: the delivery loop sends it within seconds.",
}


def _list_page(
    request: Request,
    session: SessionDep,
    *,
    cursor: str | None,
    include_deleted: bool,
    done: str | None = None,
    created: dict[str, Any] | None = None,
    error: str = "",
    draft: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    rows = service.subscriptions_page(
        session,
        after=decode_cursor(cursor) if cursor else None,
        limit=PAGE + 1,
        include_deleted=include_deleted,
    )
    shown = rows[:PAGE]
    return render(
        request,
        "webhooks.html",
        {
            "hooks": shown,
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > PAGE else None,
            "include_deleted": include_deleted,
            "event_types": sorted(EVENT_TYPES),
            "notice": DONE.get(done or ""),
            "created": created,
            "error": error,
            "draft": draft or {},
        },
        status=status,
    )


@router.get("/webhooks")
def webhooks(
    request: Request,
    admin: AdminSession,
    session: SessionDep,
    cursor: Cursor = None,
    include_deleted: bool = False,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    return _list_page(request, session, cursor=cursor, include_deleted=include_deleted, done=done)


async def _events(request: Request) -> list[str]:
    return await form_list(request, "events")


@router.post("/webhooks")
def subscribe(
    request: Request,
    admin: AdminSession,
    form: CheckedForm,
    events: Annotated[list[str], Depends(_events)],
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> Response:
    """``POST /v1/webhooks`` from a form; the signing secret is on this answer only."""
    draft = {
        "url": form.get("url", "").strip(),
        "events": events,
        "description": form.get("description", ""),
        "include_report_text": form.get("include_report_text") == "on",
    }
    try:
        body: WebhookCreate = parse(WebhookCreate, draft)
        sub, secret = service.create_subscription(
            session,
            body=body,
            settings=settings,
            actor=principal_of(admin),
            now=clock.now(),
            ctx=ctx,
        )
    except AppError as e:
        session.rollback()
        return _list_page(
            request,
            session,
            cursor=None,
            include_deleted=False,
            error=e.detail,
            draft=draft,
            status=e.status,
        )
    created = {"hook": service.subscription_out(sub), "secret": secret}
    return _list_page(request, session, cursor=None, include_deleted=False, created=created)


@router.get("/webhooks/{webhook_id}")
def webhook_page(
    request: Request,
    webhook_id: IdPath,
    admin: AdminSession,
    session: SessionDep,
    cursor: Cursor = None,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
    done: Annotated[str | None, Query(max_length=32)] = None,
    delivery: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    hook = service.subscription_out(service.require_subscription(session, webhook_id))
    rows = service.deliveries_page(
        session,
        hook.id,
        before_id=decode_cursor(cursor) if cursor else None,
        limit=DELIVERIES_PAGE + 1,
        status=status,
    )
    shown = rows[:DELIVERIES_PAGE]
    return render(
        request,
        "webhook.html",
        {
            "hook": hook,
            "deliveries": shown,
            "status_filter": status or "",
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > DELIVERIES_PAGE else None,
            "notice": DONE.get(done or ""),
            "notice_delivery": delivery,
        },
    )


def _refused(request: Request, err: AppError) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": "Not found" if err.status == 404 else "Refused",
            "detail": err.detail,
            "status": err.status,
        },
        status=err.status,
    )


@router.post("/webhooks/{webhook_id}/delete")
def delete(
    request: Request,
    webhook_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    service.delete_subscription(
        session, sub_id=webhook_id, actor=principal_of(admin), now=clock.now(), ctx=ctx
    )
    return RedirectResponse(f"{PREFIX}/webhooks/{webhook_id}?done=deleted", status_code=303)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
def redeliver(
    request: Request,
    webhook_id: IdPath,
    delivery_id: IdPath,
    admin: AdminSession,
    form: CheckedForm,
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """``POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver`` from a button."""
    try:
        service.redeliver(
            session,
            sub_id=webhook_id,
            delivery_id=delivery_id,
            actor=principal_of(admin),
            now=clock.now(),
            ctx=ctx,
        )
    except AppError as e:
        session.rollback()
        return _refused(request, e)
    return RedirectResponse(
        f"{PREFIX}/webhooks/{webhook_id}?done=redelivered&delivery={delivery_id}#d-{delivery_id}",
        status_code=303,
    )
