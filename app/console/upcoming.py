"""The admin's Upcoming page: what will change soon across all models, risks first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from app.console.security import PREFIX
from app.console.session import AdminSession
from app.console.templating import render
from app.context import ClockDep, SettingsDep
from app.db import SessionDep
from app.errors import Unprocessable
from app.pagination import decode_cursor
from app.schedule import embargoes, pending_reminders
from app.schedule.schemas import EmbargoOut, HoldOut, ReminderOut

router = APIRouter(prefix=PREFIX, include_in_schema=False)
# Rows per section: the page's work stays the same however many models there are.
PAGE = 100
SOON = timedelta(hours=24)
WINDOWS = (7, 30)
SAFETY_POLICY = "system:safety-policy"  # held_by of a model's automatic safety hold


def release_href(model: str, version: str, component: str | None = None) -> str:
    anchor = f"#c-{component}" if component else ""
    return f"{PREFIX}/models/{model}/releases/{version}{anchor}"


@dataclass(frozen=True)
class Risk:
    kind: Literal["held", "soon", "restricted"]
    kind_label: str
    model: str
    version: str
    component: str
    draft: bool
    tier: str
    what: str
    at: datetime | None
    href: str


def risks(holds: list[HoldOut], lifts: list[EmbargoOut], *, now: datetime) -> list[Risk]:
    """Held components (newest hold first), then components whose next stage is within
    24 h (soonest first), then restricted ones (newest restriction first)."""
    held, soon, restricted = [], [], []
    for h in holds:
        common: dict[str, Any] = {
            "model": h.model,
            "version": h.version,
            "component": h.component,
            "draft": h.release_status == "draft",
            "tier": h.tier,
            "href": release_href(h.model, h.version, h.component),
        }
        waiting = f"; a resume brings {h.waiting.tier}" if h.waiting else ""
        if h.held:
            held.append(
                Risk(
                    "held",
                    "held by safety policy" if h.held_by == SAFETY_POLICY else "held",
                    what=f"held: {h.hold_reason}{waiting}",
                    at=h.held_at,
                    **common,
                )
            )
        if h.restricted_tier is not None:
            restricted.append(
                Risk(
                    "restricted",
                    f"ceiling {h.restricted_tier}",
                    what=f"restricted to {h.restricted_tier}: {h.restrict_reason}{waiting}",
                    at=h.restricted_at,
                    **common,
                )
            )
    for e in lifts:
        if e.state == "upcoming" and e.at - now <= SOON:
            soon.append(
                Risk(
                    "soon",
                    "within 24 h",
                    model=e.model,
                    version=e.version,
                    component=e.component,
                    draft=e.release_status == "draft",
                    tier=e.component_tier,
                    what=f"opens to {e.tier}",
                    at=e.at,
                    href=release_href(e.model, e.version, e.component),
                )
            )
    held.sort(key=lambda r: r.at or now, reverse=True)
    restricted.sort(key=lambda r: r.at or now, reverse=True)
    return held + soon + restricted


def reminder_about(r: ReminderOut) -> str:
    d = r.data
    if r.event == "embargo.upcoming":
        return f"{d['model']}@{d['version']}/{d['component']} opens to {d['tier']}"
    if d.get("kind") == "partner_secret":
        return f"client secret of partner {d['partner']}"
    return f"API key {d.get('prefix', '')} of {d.get('user', '')}"


@router.get("/upcoming")
def upcoming(
    request: Request,
    admin: AdminSession,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    days: Annotated[int, Query()] = 7,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    holds_after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if days not in WINDOWS:
        raise Unprocessable(f"days must be one of {', '.join(map(str, WINDOWS))}")
    now = clock.now()
    until = now + timedelta(days=days)
    lifts, lifts_next = embargoes.list_embargoes(
        session,
        now=now,
        when="upcoming",
        model_id=None,
        since=None,
        until=until,
        cursor=cursor,
        limit=PAGE,
    )
    holds, holds_more = embargoes.list_holds(
        session,
        now=now,
        model_id=None,
        after=decode_cursor(holds_after) if holds_after else None,
        limit=PAGE,
    )
    reminders, _ = pending_reminders.list_reminders(
        session, settings=settings, now=now, model_id=None, until=until, cursor=None, limit=PAGE
    )
    lift_rows = [
        {**e.model_dump(), "href": release_href(e.model, e.version, e.component)} for e in lifts
    ]
    return render(
        request,
        "upcoming.html",
        {
            "now": now,
            "days": days,
            "risks": risks(holds, lifts, now=now),
            "lifts": lift_rows,
            "lifts_more": lifts_next,
            "holds_more": holds_more,
            "reminders": [
                {"due_at": r.due_at, "event": r.event, "about": reminder_about(r), "at": r.at}
                for r in reminders
            ],
        },
    )
