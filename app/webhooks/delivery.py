"""Draining the outbox: claim due deliveries, POST them signed, record every attempt.

A delivery is claimed by setting a *lease* (``locked_until``) with a compare-and-set, after
``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, and the claim is committed before any
network I/O: no row lock or transaction is ever held across an HTTP request. If the replica
dies mid-request, the lease runs out and another replica sends the delivery again with the
same idempotency id; this is why delivery is at-least-once and receivers deduplicate on
``X-Weightgate-Delivery``. The outcome is written back only while the lease is still ours,
so a slow replica cannot overwrite the result of the one that took over.

Failures are retried with exponential backoff and jitter until the retry would fall after
``created_at + webhook_horizon_seconds``; the delivery is then ``failed``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.settings import Settings
from app.webhooks.signing import encode_body, signed_headers
from app.webhooks.targets import (
    IPAddress,
    OwnEndpoint,
    TargetRefused,
    peer_refusal,
    pin_target,
)

log = logging.getLogger(__name__)

USER_AGENT = "weightgate-webhooks/1"
_MAX_ERROR = 500


@dataclass(frozen=True)
class DeliveryJob:
    delivery_id: int
    subscription_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes
    lease: datetime


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim_due_deliveries(
    session: Session, *, now: datetime, lease_seconds: float, limit: int
) -> list[DeliveryJob]:
    """Lease up to ``limit`` due deliveries to the caller (who commits, then sends)."""
    free = or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now)
    candidates = session.scalars(
        select(WebhookDelivery.id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            free,
            WebhookSubscription.disabled_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    ).all()
    lease = now + timedelta(seconds=lease_seconds)
    won: list[int] = []
    for delivery_id in candidates:
        result = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending", free)
            .values(locked_until=lease)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            won.append(delivery_id)
    if not won:
        return []
    rows = session.execute(
        select(WebhookDelivery, WebhookSubscription)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookDelivery.id.in_(won))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
    ).all()
    return [
        DeliveryJob(
            delivery_id=d.id,
            subscription_id=s.id,
            url=s.url,
            secret=s.secret,
            event_id=d.event_id,
            event_type=d.event_type,
            body=encode_body(d.payload),
            lease=lease,
        )
        for d, s in rows
    ]


def backoff_seconds(attempts: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry number ``attempts`` (1 = after the first failure): doubling from
    ``base`` up to ``cap``, then "equal jitter" (between half and all of it) so receivers
    that come back are not hit by every retry at the same instant."""
    raw: float = min(cap, base * 2.0 ** min(attempts - 1, 62))
    return raw / 2 + rng.random() * raw / 2


def record_attempt(
    session: Session,
    job: DeliveryJob,
    result: AttemptResult,
    *,
    now: datetime,
    settings: Settings,
    rng: random.Random,
) -> str:
    """Store the attempt and move the delivery on; returns delivered, retry, failed or
    ``lost_lease`` (another replica took it over meanwhile; its outcome stands)."""
    delivery = session.get(WebhookDelivery, job.delivery_id, populate_existing=True)
    if delivery is None:  # deleted with its subscription meanwhile
        return "lost_lease"
    session.add(
        WebhookAttempt(
            delivery_id=job.delivery_id,
            at=now,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
    )
    attempts = delivery.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "locked_until": None}
    if result.ok:
        outcome = "delivered"
        values.update(status="delivered", delivered_at=now, last_error=None)
    else:
        delay = backoff_seconds(
            attempts,
            base=settings.webhook_retry_base_seconds,
            cap=settings.webhook_retry_max_seconds,
            rng=rng,
        )
        next_at = now + timedelta(seconds=delay)
        horizon = delivery.created_at + timedelta(seconds=settings.webhook_horizon_seconds)
        error = result.error or f"HTTP {result.status_code}"
        if next_at > horizon:
            outcome = "failed"
            values.update(status="failed", last_error=f"gave up: {error}"[:_MAX_ERROR])
        else:
            outcome = "retry"
            values.update(next_attempt_at=next_at, last_error=error[:_MAX_ERROR])
    changed = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == job.delivery_id,
            WebhookDelivery.locked_until == job.lease,
            WebhookDelivery.status == "pending",
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return "lost_lease"
    return outcome


def _peer_guard(expected: IPAddress, settings: Settings) -> Callable[..., Awaitable[None]]:
    """An httpcore ``trace`` hook that checks the socket a delivery opened, once connected
    and before the request is written: what was actually connected to must be the address
    that was checked (:func:`app.webhooks.targets.peer_refusal`)."""

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        why = peer_refusal(peer, expected, settings)
        if why is not None:
            if stream is not None:
                await stream.aclose()
            raise TargetRefused(why)

    return trace


async def send(
    client: httpx.AsyncClient,
    job: DeliveryJob,
    *,
    settings: Settings,
    own: OwnEndpoint,
    timestamp: int,
) -> AttemptResult:
    """One POST, to the address checked just now. Never raises for network trouble."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target, address = await pin_target(job.url, settings, own=own)
    except TargetRefused as e:
        return AttemptResult(None, f"refused: {e}", took())
    headers = signed_headers(
        secret=job.secret,
        event_type=job.event_type,
        event_id=job.event_id,
        timestamp=timestamp,
        body=job.body,
    )
    headers["Host"] = target.host_header
    headers["User-Agent"] = USER_AGENT
    extensions: dict[str, Any] = {"trace": _peer_guard(address, settings)}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    request = client.build_request(
        "POST",
        target.pinned_url(address),
        content=job.body,
        headers=headers,
        extensions=extensions,
        timeout=settings.webhook_timeout_seconds,
    )
    try:
        # Redirects are not followed (they could lead anywhere); the body is not read.
        response = await client.send(request, stream=True, follow_redirects=False)
        await response.aclose()
    except TargetRefused as e:
        return AttemptResult(None, f"refused: {e}", took())
    except httpx.HTTPError as e:
        # The message of transport errors names the failure, not the URL (which may hold
        # a receiver's own secret in its query string).
        return AttemptResult(None, f"{type(e).__name__}: {e}"[:_MAX_ERROR], took())
    return AttemptResult(response.status_code, None, took())
