"""The webhooks API (admins): subscribe a URL to events, list, delete, inspect deliveries and
send one again."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import AdminDep
from app.context import ClockDep, ContextDep, SettingsDep
from app.db import SessionDep
from app.errors import problems
from app.ids import IdPath
from app.pagination import Page, PageDep, encode_cursor
from app.webhooks import service
from app.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


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
    return WebhookCreated(**service.subscription_out(sub).model_dump(), secret=secret)


@router.get("", responses=problems(401, 403, 422))
def list_webhooks(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    include_deleted: bool = False,
) -> Page[WebhookOut]:
    rows = service.subscriptions_page(
        session, after=page.after, limit=page.limit + 1, include_deleted=include_deleted
    )
    items = rows[: page.limit]
    more = len(rows) > page.limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.get("/{webhook_id}", responses=problems(401, 403, 404))
def get_webhook(webhook_id: IdPath, session: SessionDep, _: AdminDep) -> WebhookOut:
    return service.subscription_out(service.require_subscription(session, webhook_id))


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
    rows = service.deliveries_page(
        session, sub.id, before_id=page.after, limit=page.limit + 1, status=status
    )
    items = rows[: page.limit]
    more = len(rows) > page.limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=problems(401, 403, 404, 409),
)
def redeliver(
    webhook_id: IdPath,
    delivery_id: IdPath,
    session: SessionDep,
    admin: AdminDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> DeliveryOut:
    """Send a delivered or failed delivery again (audited ``webhook.redelivered``): it is
    queued, due now, and the delivery loop sends it with the same payload and idempotency id
    (``X-Weightgate-Delivery``); its earlier attempts stay listed. ``409 delivery_in_flight``
    while it is still pending, ``409 webhook_deleted`` for a deleted subscription."""
    return service.redeliver(
        session,
        sub_id=webhook_id,
        delivery_id=delivery_id,
        actor=admin,
        now=clock.now(),
        ctx=ctx,
    )
