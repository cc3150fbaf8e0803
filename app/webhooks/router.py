"""The webhooks API (admins): subscribe a URL to events, list, delete, inspect deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import AdminDep
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import problems
from app.ids import IdPath
from app.models import WebhookSubscription
from app.pagination import Page, PageDep, encode_cursor
from app.webhooks import service
from app.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def _out(sub: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=sub.id,
        url=sub.url,
        events=sub.events,
        description=sub.description,
        include_report_text=sub.include_report_text,
        created_at=sub.created_at,
        disabled_at=sub.disabled_at,
    )


@router.post("", status_code=201, responses=problems(401, 403, 422))
def create_webhook(
    body: WebhookCreate,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> WebhookCreated:
    """Subscribe a URL. The answer carries the signing secret; it is never shown again."""
    sub, secret = service.create_subscription(
        session, body=body, settings=settings, actor=admin, now=clock.now(), ctx=ctx
    )
    return WebhookCreated(**_out(sub).model_dump(), secret=secret)


@router.get("", responses=problems(401, 403, 422))
def list_webhooks(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    include_deleted: bool = False,
) -> Page[WebhookOut]:
    rows = service.subscriptions_page(
        session, after=page.after, limit=page.limit + 1, include_disabled=include_deleted
    )
    items = [_out(s) for s in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.get("/{webhook_id}", responses=problems(401, 403, 404))
def get_webhook(webhook_id: IdPath, session: SessionDep, _: AdminDep) -> WebhookOut:
    return _out(service.require_subscription(session, webhook_id))


@router.delete("/{webhook_id}", status_code=204, responses=problems(401, 403, 404))
def delete_webhook(
    webhook_id: IdPath, session: SessionDep, admin: AdminDep, clock: ClockDep, ctx: ContextDep
) -> Response:
    service.delete_subscription(session, sub_id=webhook_id, actor=admin, now=clock.now(), ctx=ctx)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", responses=problems(401, 403, 404, 422))
def list_deliveries(
    webhook_id: IdPath,
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
) -> Page[DeliveryOut]:
    """Deliveries to this subscription, newest first, each with all its attempts."""
    sub = service.require_subscription(session, webhook_id)
    shown, more = service.deliveries_page(
        session, sub, before_id=page.after, limit=page.limit, status=status
    )
    items = [
        DeliveryOut(
            id=d.id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempt_count=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            payload=d.payload,
            attempts=[
                AttemptOut(
                    at=a.at, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms
                )
                for a in attempts
            ],
        )
        for d, attempts in shown
    ]
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)
